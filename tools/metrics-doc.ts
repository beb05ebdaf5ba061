import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { HOST_SNAPSHOT_TYPE, HostSnapshot } from "../contracts/index.js";
import { GatewayMetrics } from "../gateway/http/metrics.js";
import { FleetView } from "../gateway/view/fleet-view.js";
import { HealthCache } from "../gateway/view/health-cache.js";
import { betweenMarkers, writeOrCheck } from "./generated-doc.js";
// Writes the metric tables of docs/METRICS.md from the gateway's registry, or with --check tells
// whether they are current (tools/metrics-doc.test.ts fails when they are not).
//
//   npx tsx tools/metrics-doc.ts           rewrite the tables between the markers
//   npx tsx tools/metrics-doc.ts --check   exit 1 if docs/METRICS.md differs

export const METRICS_DOC_PATH = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "docs/METRICS.md",
);

/** The generated parts of docs/METRICS.md, by marker name. */
export type MetricTables = Record<"gateway" | "agents", string>;

/** One host with every optional part, so that every per-host series and label shows. */
function sampleHost(): HostSnapshot {
  const at = new Date(0).toISOString();
  return HostSnapshot.parse({
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host: "sample",
    seq: 1,
    at,
    heartbeatMs: 5_000,
    agent: {
      version: "0",
      startedAt: at,
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 0,
      commandRefusals: { refused: { unsigned: 0 }, malformed: {} },
      counters: { reconciles: 0, probeResults: { pass: 0 } },
    },
    outbox: { depth: 0, capacity: 1, published: 0, dropped: 0, unpublishable: 0 },
    docker: { status: "up" },
    containers: [],
  });
}

/**
 * The tables as they must appear in the doc: one row per `fleetheal_` metric of the gateway's
 * registry (name, type, labels, help), those with a `host` label under "Agents", the others
 * under "Gateway". Columns are padded as the formatter pads Markdown tables.
 */
export async function metricTables(): Promise<MetricTables> {
  const view = new FleetView();
  view.apply(sampleHost(), 0);
  const metrics = new GatewayMetrics(new HealthCache(view, STALENESS), () => 0, view);
  const rows: Record<keyof MetricTables, string[][]> = { gateway: [], agents: [] };
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    if (!metric.name.startsWith("fleetheal_")) continue;
    const labels = new Set<string>();
    for (const { labels: l } of metric.values) {
      for (const name of Object.keys(l)) if (name !== "le") labels.add(name);
    }
    const row = [
      `\`${metric.name}\``,
      String(metric.type),
      [...labels].map((l) => `\`${l}\``).join(", "),
      metric.help.replaceAll("|", "\\|"),
    ];
    rows[labels.has("host") ? "agents" : "gateway"].push(row);
  }
  return { gateway: table(rows.gateway), agents: table(rows.agents) };
}

const STALENESS = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
const HEAD = ["metric", "type", "labels", "meaning"];

function table(rows: string[][]): string {
  const all = [HEAD, ...rows];
  const widths = HEAD.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  return [line(HEAD), rule, ...rows.map(line)].join("\n");
}

/** `doc` with the text between each pair of markers replaced by its table. */
export function withTables(doc: string, tables: MetricTables): string {
  let out = doc;
  for (const [name, text] of Object.entries(tables)) {
    const markers = {
      start: `<!-- metrics:${name}:start -->`,
      end: `<!-- metrics:${name}:end -->`,
    };
    out = betweenMarkers(out, "docs/METRICS.md", markers, text);
  }
  return out;
}

async function main(): Promise<void> {
  const tables = await metricTables();
  await writeOrCheck({
    path: METRICS_DOC_PATH,
    doc: "docs/METRICS.md",
    script: "tools/metrics-doc.ts",
    generate: (doc) => withTables(doc, tables),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
