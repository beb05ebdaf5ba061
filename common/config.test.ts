import { describe, expect, it } from "vitest";
import { z } from "zod";
import { configError } from "../test/support/config-error.js";
import { intFromEnv, loadEnv } from "./config.js";
import { ConfigError } from "./errors.js";

const Schema = z.object({
  FLEETHEAL_A: z.string().default("a-default"),
  FLEETHEAL_N: intFromEnv({ min: 1, max: 10, default: 5 }),
  FLEETHEAL_ENUM: z.enum(["x", "y"]).optional(),
});

describe("loadEnv", () => {
  it("applies defaults for unset variables", () => {
    expect(loadEnv(Schema, {})).toEqual({ FLEETHEAL_A: "a-default", FLEETHEAL_N: 5 });
  });

  it("treats an empty variable as unset", () => {
    expect(loadEnv(Schema, { FLEETHEAL_A: "", FLEETHEAL_N: "", FLEETHEAL_ENUM: "" })).toEqual({
      FLEETHEAL_A: "a-default",
      FLEETHEAL_N: 5,
    });
  });

  it("coerces integers and ignores variables not in the schema", () => {
    expect(loadEnv(Schema, { FLEETHEAL_N: "7", FLEETHEAL_ENUM: "y", PATH: "/bin" })).toEqual({
      FLEETHEAL_A: "a-default",
      FLEETHEAL_N: 7,
      FLEETHEAL_ENUM: "y",
    });
  });

  it("names every bad variable with its value in one ConfigError", () => {
    const error = configError(() => loadEnv(Schema, { FLEETHEAL_N: "11", FLEETHEAL_ENUM: "z" }));
    expect(error.code).toBe("FLEETHEAL_ERR_CONFIG");
    expect(error.name).toBe("ConfigError");
    const lines = error.message.split("\n");
    expect(lines[0]).toBe("invalid configuration:");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toBe('  FLEETHEAL_N="11": must be at most 10');
    expect(lines[2]?.startsWith('  FLEETHEAL_ENUM="z": ')).toBe(true);
  });

  it.each([
    ["0", "must be at least 1"],
    ["2.5", "must be a whole number"],
    ["ten", 'FLEETHEAL_N="ten": '],
  ])("integer %j is rejected (%s)", (value, expected) => {
    expect(configError(() => loadEnv(Schema, { FLEETHEAL_N: value })).message).toContain(expected);
  });
});

describe("blank integers", () => {
  // Number("  ") is 0: a blank-but-not-empty variable (FLEETHEAL_GATEWAY_PORT=" " from a
  // compose file, say) must not silently become 0 when 0 is an allowed value.
  const ZeroAllowed = z.object({ FLEETHEAL_N: intFromEnv({ min: 0, max: 10, default: 5 }) });

  it.each(["  ", "\t"])("%j is never read as 0 (rejected, or treated as unset)", (blank) => {
    let value: number | undefined;
    try {
      value = loadEnv(ZeroAllowed, { FLEETHEAL_N: blank }).FLEETHEAL_N;
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return;
    }
    expect(value).toBe(5);
  });
});
