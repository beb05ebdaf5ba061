import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { createLogger } from "./logger.js";

/** A destination that keeps what the logger writes. */
function captured() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, lines };
}

describe("createLogger", () => {
  it("a bad FLEETHEAL_LOG_LEVEL is a configuration error naming the variable", () => {
    const run = () => createLogger("t", { FLEETHEAL_LOG_LEVEL: "debgu" }, captured().stream);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/FLEETHEAL_LOG_LEVEL="debgu": must be one of fatal, error, warn, info/);
  });

  it("an empty FLEETHEAL_LOG_LEVEL means unset: info, and no warning", () => {
    for (const env of [{ FLEETHEAL_LOG_LEVEL: "" }, {}]) {
      const out = captured();
      const log = createLogger("t", env, out.stream);
      expect(log.level).toBe("info");
      expect(out.lines).toEqual([]);
    }
  });

  it("uses the level given", () => {
    const out = captured();
    const log = createLogger("t", { FLEETHEAL_LOG_LEVEL: "warn" }, out.stream);
    log.info("hidden");
    log.warn("shown");
    expect(out.lines.map((line) => JSON.parse(line).msg)).toEqual(["shown"]);
  });
});
