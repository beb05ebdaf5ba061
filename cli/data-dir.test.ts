import { describe, expect, it } from "vitest";
import { ConfigError } from "../common/errors.js";
import { upDataDirSetting } from "./data-dir.js";

describe("upDataDirSetting", () => {
  it("is FLEETHEAL_DATA_DIR, or .fleetheal when unset or empty, as `fleetheal up` reads it", () => {
    expect(upDataDirSetting({ FLEETHEAL_DATA_DIR: "/var/lib/fleetheal" })).toBe(
      "/var/lib/fleetheal",
    );
    for (const env of [{}, { FLEETHEAL_DATA_DIR: "" }])
      expect(upDataDirSetting(env)).toBe(".fleetheal");
  });

  it("refuses a path no file system takes, naming the variable", () => {
    expect(() => upDataDirSetting({ FLEETHEAL_DATA_DIR: "x".repeat(5000) })).toThrow(ConfigError);
    expect(() => upDataDirSetting({ FLEETHEAL_DATA_DIR: "x".repeat(5000) })).toThrow(
      /FLEETHEAL_DATA_DIR/,
    );
  });
});
