// Every query of the shipped Grafana dashboard and every expression of the shipped alert rules
// names only metrics that fleetheal exports. The names that exist are read from the code itself
// (every "fleetheal_…" string of the modules that use prom-client in gateway/, handlers/ and
// common/, whether as `name: "fleetheal_…"` or passed to a function that makes the metric, and
// prom-client's default process and Node.js metrics), so a metric added later counts without
// touching this test, and a metric renamed or removed fails it.

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { collectDefaultMetrics, Registry } from "prom-client";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO } from "./support/fleetheal.js";
import { alertRules, RULES_FILE } from "./support/prometheus.js";

const DASHBOARD = path.join(REPO, "infra", "grafana", "fleetheal-dashboard.json");
/** Where the roles that serve /metrics define their metrics. */
const METRIC_SOURCES = ["gateway", "handlers", "common"];

/**
 * The metric names defined in the sources under `dirs` (test files left out): the "fleetheal_…"
 * strings of modules that import prom-client. Only those: other modules name KV buckets so.
 */
function definedInCode(dirs: string[]): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") visit(file);
      } else if (/\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) {
        const source = readFileSync(file, "utf8");
        if (!/from\s+["']prom-client["']/.test(source)) continue;
        for (const [, name] of source.matchAll(/["'`](fleetheal_[a-z0-9_]+)["'`]/g)) {
          names.add(name as string);
        }
      }
    }
  };
  for (const dir of dirs) visit(path.join(REPO, dir));
  return names;
}

/** prom-client's default metrics, which every role with a /metrics exports. */
async function defaultMetrics(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
}

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan"]);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers,
 * ranges, grouping clauses, Grafana variables, numbers, keywords and function names are set
 * aside. Grafana's `label_values(metric, label)` names its metric.
 */
function metricNamesIn(expr: string): string[] {
  const labelValues = /^\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*$/.exec(expr);
  if (labelValues) return [labelValues[1] as string];
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{[^}]*\}|\$\w+/g, " ");
  const names: string[] = [];
  const token = /(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)|([a-zA-Z_:][\w:]*)(\s*\()?/g;
  for (const [, number, word, call] of bare.matchAll(token)) {
    if (number !== undefined || word === undefined || call !== undefined) continue;
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

/** Whether `name` is a series of a defined metric (a histogram's buckets, sum and count included). */
function exists(name: string, defined: Set<string>): boolean {
  return defined.has(name) || defined.has(name.replace(/_(?:bucket|sum|count)$/, ""));
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Each query of the dashboard, with where it is. */
function dashboardQueries(): Array<{ where: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; type: string; query?: unknown }> };
  };
  const out: Array<{ where: string; expr: string }> = [];
  const visit = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined)
          out.push({ where: `panel "${panel.title}"`, expr: target.expr });
      }
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    if (variable.type !== "query") continue;
    const q = variable.query;
    const expr = typeof q === "string" ? q : (q as { query: string }).query;
    out.push({ where: `variable $${variable.name}`, expr });
  }
  return out;
}

let defined: Set<string>;

beforeAll(async () => {
  defined = new Set([...definedInCode(METRIC_SOURCES), ...(await defaultMetrics())]);
});

describe("the metric names in the shipped queries", () => {
  it("are read from the code that defines them", () => {
    for (const name of [
      "fleetheal_hosts",
      "fleetheal_containers_quarantined",
      "fleetheal_containers_not_healing",
      "fleetheal_event_lag_seconds",
      "process_resident_memory_bytes",
    ]) {
      expect(defined).toContain(name);
    }
  });

  it("are found in PromQL however it is written", () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.9, sum by (le) (rate(a_seconds_bucket{job=~"x|y", le!="1"}[$__rate_interval] offset 5m)))',
      ),
    ).toEqual(["a_seconds_bucket"]);
    expect(
      metricNamesIn(
        '(max by (host) (b) == 0) and on (host) max without (instance) (c{host=~"$host"}) > 1e3 or vector(0)',
      ),
    ).toEqual(["b", "c"]);
    expect(metricNamesIn("time() - max(d_timestamp_seconds) unless e")).toEqual([
      "d_timestamp_seconds",
      "e",
    ]);
    expect(metricNamesIn("label_values(f_up, host)")).toEqual(["f_up"]);
    expect(exists("fleetheal_event_lag_seconds_bucket", defined)).toBe(true);
    expect(exists("fleetheal_no_such_metric", defined)).toBe(false);
  });

  it("of the Grafana dashboard all exist", () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    const unknown = queries.flatMap(({ where, expr }) => {
      const names = metricNamesIn(expr);
      expect(names.length, `${where} selects no metric: ${expr}`).toBeGreaterThan(0);
      return names.filter((n) => !exists(n, defined)).map((n) => `${where}: ${n}`);
    });
    expect(unknown).toEqual([]);
  });

  it("of the alert rules all exist", () => {
    const unknown = alertRules(readFileSync(RULES_FILE, "utf8")).flatMap((rule) => {
      const names = metricNamesIn(rule.expr);
      expect(names.length, `${rule.alert} selects no metric`).toBeGreaterThan(0);
      return names.filter((n) => !exists(n, defined)).map((n) => `${rule.alert}: ${n}`);
    });
    expect(unknown).toEqual([]);
  });
});
