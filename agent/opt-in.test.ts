import { describe, expect, it } from "vitest";
import { STOP_TIMEOUT_LABEL, stopTimeoutFromLabels } from "../contracts/index.js";
import { AUTOHEAL_LABEL, isOptedIn } from "./opt-in.js";

describe("isOptedIn", () => {
  const policy = { label: "autoheal", watchAll: false };

  it.each([
    [{ autoheal: "true" }, true],
    [{ autoheal: "TRUE" }, true],
    [{ autoheal: "True" }, true],
    [{ autoheal: " true " }, true],
    [{ autoheal: "\ttrue\n" }, true],
    [{ autoheal: "false" }, false],
    [{ autoheal: "False" }, false],
    [{ autoheal: "1" }, false],
    [{ autoheal: "yes" }, false],
    [{ autoheal: "truee" }, false],
    [{ autoheal: "t rue" }, false],
    [{ autoheal: `true${" ".repeat(100)}` }, false],
    [{ autoheal: "" }, false],
    [{}, false],
    [{ "autoheal.stop.timeout": "5" }, false],
    [{ other: "true" }, false],
  ])("label autoheal: %j -> %s", (labels, expected) => {
    expect(isOptedIn(policy, labels)).toBe(expected);
  });

  it("honours a custom label key", () => {
    const custom = { label: "com.example.heal", watchAll: false };
    expect(isOptedIn(custom, { "com.example.heal": "true" })).toBe(true);
    expect(isOptedIn(custom, { "com.example.heal": "TRUE" })).toBe(true);
    expect(isOptedIn(custom, { autoheal: "true" })).toBe(false);
  });

  describe("watching all", () => {
    const all = { label: "all", watchAll: true };

    it.each([
      [{}, true],
      [{ autoheal: "true" }, true],
      [{ autoheal: "True" }, true],
      [{ autoheal: "anything" }, true],
      [{ autoheal: "" }, true],
      [{ "autoheal.action": "false" }, true],
      [{ autoheal: "false" }, false],
      [{ autoheal: "False" }, false],
      [{ autoheal: "FALSE" }, false],
      [{ autoheal: "  false " }, false],
      [{ all: "false" }, false],
    ])("%j -> %s", (labels, expected) => {
      expect(isOptedIn(all, labels)).toBe(expected);
    });

    it("reads autoheal's key for the opt-out", () => {
      expect(AUTOHEAL_LABEL).toBe("autoheal");
    });
  });
});

describe("stopTimeoutFromLabels", () => {
  it("uses the autoheal tool's label name", () => {
    expect(STOP_TIMEOUT_LABEL).toBe("autoheal.stop.timeout");
  });

  it.each([
    ["0", 0],
    ["20", 20],
    [" 30 ", 30],
    ["3600", 3600],
  ])("%j -> %s", (value, expected) => {
    expect(stopTimeoutFromLabels({ [STOP_TIMEOUT_LABEL]: value })).toBe(expected);
  });

  it.each(["abc", "-1", "99999", "3601", "2.5", "10s", "", "   "])("%j -> undefined", (value) => {
    expect(stopTimeoutFromLabels({ [STOP_TIMEOUT_LABEL]: value })).toBeUndefined();
  });

  it("no label -> undefined", () => {
    expect(stopTimeoutFromLabels({ autoheal: "true" })).toBeUndefined();
  });
});
