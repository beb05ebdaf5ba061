import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isOptedIn } from "../agent/opt-in.js";
import {
  PROBE_KINDS,
  PROBE_LABEL_PREFIX,
  PROBE_OPTION_KEYS,
  parseProbeLabels,
} from "../agent/probes/probe-spec.js";
import { STOP_TIMEOUT_LABEL, stopTimeoutFromLabels } from "../contracts/index.js";
import { isMuted, NOTIFY_MUTE_LABEL } from "../handlers/notify/notify.js";
import { POLICY_LABEL_SPECS, POLICY_LABELS, RECREATE_PULL_LABEL } from "../policy/policy-labels.js";
import { LABELS_DOC_PATH, labelKeysIn, labelSpecs, labelsDoc, PRODUCT_DIRS } from "./labels-doc.js";

const ROOT = path.join(path.dirname(LABELS_DOC_PATH), "..", "..");

/** Every product source file (not tests), as text. */
async function productSources(): Promise<string[]> {
  const texts: string[] = [];
  for (const dir of PRODUCT_DIRS) {
    const entries = await readdir(path.join(ROOT, dir), { recursive: true, withFileTypes: true });
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith(".ts") || e.name.endsWith(".test.ts")) continue;
      if (e.name.endsWith(".d.ts")) continue;
      texts.push(await readFile(path.join(e.parentPath, e.name), "utf8"));
    }
  }
  return texts;
}

const names = () => labelSpecs().map((s) => s.name);
const specOf = (name: string) => labelSpecs().find((s) => s.name === name);

describe("docs/reference/labels.md", () => {
  it("is the page the label specs give", async () => {
    // Fails when a spec changes without `npx tsx tools/labels-doc.ts` being run.
    expect(await readFile(LABELS_DOC_PATH, "utf8")).toBe(labelsDoc());
  });

  it("has a spec for every autoheal.* label the product code names", async () => {
    const named = new Set((await productSources()).flatMap(labelKeysIn));
    expect(named.size).toBeGreaterThan(10);
    const documented = new Set(names());
    expect([...named].filter((key) => !documented.has(key)).sort()).toEqual([]);
  });

  it("finds a label added to the code without a spec", () => {
    const source = 'export const NEW_LABEL = "autoheal.brand_new";\nconst p = "autoheal.probe.";';
    expect(labelKeysIn(source)).toEqual(["autoheal.brand_new"]);
    expect(names()).not.toContain("autoheal.brand_new");
  });

  it("lists each label once, with every column filled", () => {
    expect(new Set(names()).size).toBe(names().length);
    for (const spec of labelSpecs()) {
      for (const value of Object.values(spec)) expect(String(value).trim()).not.toBe("");
    }
  });
});

// The specs of labels whose parsers do not read them are checked against those parsers here.
describe("the label specs agree with the parsers", () => {
  it("policy: exactly POLICY_LABELS and the recreate pull flag", () => {
    expect(POLICY_LABEL_SPECS.map((s) => s.name).sort()).toEqual(
      [...Object.values(POLICY_LABELS), RECREATE_PULL_LABEL].sort(),
    );
  });

  it("probes: exactly the kinds and options the probe parser knows", () => {
    const probeNames = names().filter((n) => n.startsWith(PROBE_LABEL_PREFIX));
    expect(probeNames.sort()).toEqual(
      [...PROBE_KINDS, ...PROBE_OPTION_KEYS].map((k) => PROBE_LABEL_PREFIX + k).sort(),
    );
    // The range the page states for retries is the parser's.
    expect(specOf(`${PROBE_LABEL_PREFIX}retries`)?.range).toBe("1 to 100");
    const withRetries = (r: string) =>
      parseProbeLabels({ [`${PROBE_LABEL_PREFIX}tcp`]: "80", [`${PROBE_LABEL_PREFIX}retries`]: r });
    expect(withRetries("100")?.ok).toBe(true);
    expect(withRetries("101")?.ok).toBe(false);
  });

  it("stop timeout: 0 to 3600 seconds", () => {
    expect(specOf(STOP_TIMEOUT_LABEL)?.range).toBe("0 to 3600");
    expect(stopTimeoutFromLabels({ [STOP_TIMEOUT_LABEL]: "0" })).toBe(0);
    expect(stopTimeoutFromLabels({ [STOP_TIMEOUT_LABEL]: "3600" })).toBe(3_600);
    expect(stopTimeoutFromLabels({ [STOP_TIMEOUT_LABEL]: "3601" })).toBeUndefined();
  });

  it("notify: the muting words the page names mute, others do not", () => {
    for (const word of ["false", "0", "no", "off", " OFF "]) {
      expect(specOf(NOTIFY_MUTE_LABEL)?.range).toContain(`\`${word.trim().toLowerCase()}\``);
      expect(isMuted({ [NOTIFY_MUTE_LABEL]: word })).toBe(true);
    }
    for (const word of ["true", "mute", ""])
      expect(isMuted({ [NOTIFY_MUTE_LABEL]: word })).toBe(false);
  });

  it("opt-in: true opts in, false opts out when watching all", () => {
    expect(isOptedIn({ label: "autoheal", watchAll: false }, { autoheal: "TRUE" })).toBe(true);
    expect(isOptedIn({ label: "all", watchAll: true }, { autoheal: "false" })).toBe(false);
    expect(names()).toContain("autoheal");
  });
});
