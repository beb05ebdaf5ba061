import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { METRICS_DOC_PATH, metricTables, withTables } from "./metrics-doc.js";

describe("docs/METRICS.md", () => {
  it("lists every metric of the gateway's registry as the registry has it", async () => {
    const doc = await readFile(METRICS_DOC_PATH, "utf8");
    // Fails when a metric is added, removed or renamed, or its help or labels change, without
    // `npx tsx tools/metrics-doc.ts` being run.
    expect(withTables(doc, await metricTables())).toBe(doc);
  });

  it("puts the per-host series under Agents and the others under Gateway", async () => {
    const { gateway, agents } = await metricTables();
    expect(agents).toContain("`fleetheal_host_up`");
    expect(agents).toMatch(
      /`fleetheal_agent_probe_results_total` +\| counter +\| `host`, `result`/,
    );
    expect(gateway).toContain("`fleetheal_fleet_status`");
    expect(gateway).not.toContain("`host`");
    expect(gateway).not.toContain("process_");
  });

  it("refuses a doc without the markers", () => {
    expect(() => withTables("# Metrics\n", { gateway: "", agents: "" })).toThrow(/no <!-- metrics/);
  });
});
