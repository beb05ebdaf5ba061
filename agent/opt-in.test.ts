import { describe, expect, it } from "vitest";
import { STOP_TIMEOUT_LABEL, stopTimeoutFromLabels } from "../contracts/index.js";
import { isOptedIn } from "./opt-in.js";

describe("isOptedIn", () => {
  const policy = { label: "autoheal", watchAll: false };

  it.each([
    [{ autoheal: "true" }, true],
    [{ autoheal: "false" }, false],
    [{ autoheal: "TRUE" }, false],
    [{ autoheal: "1" }, false],
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
    expect(isOptedIn(custom, { autoheal: "true" })).toBe(false);
  });

  it("watchAll opts in every container", () => {
    const all = { label: "all", watchAll: true };
    expect(isOptedIn(all, {})).toBe(true);
    expect(isOptedIn(all, { autoheal: "false" })).toBe(true);
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
