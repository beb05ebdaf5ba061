// The shipped alert rules, checked by Prometheus's own tool: `promtool check rules` accepts them,
// and `promtool test rules` runs the series fixtures of fleetheal.rules.test.yml, which must make
// every rule fire and also hold it back. Every rule carries a severity, a summary, a description
// and a runbook link to a section of docs/ALERTS.md that exists. The example scrape configuration
// is valid for Prometheus and loads these rules.
//
// promtool comes with Debian's prometheus package (infra/install.sh --test): without it this
// test fails, saying so, rather than skipping.

import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { REPO } from "./support/fleetheal.js";
import {
  alertRules,
  PROMETHEUS_INFRA,
  promtool,
  RULES_FILE,
  RULES_TEST_FILE,
  withForDurations,
} from "./support/prometheus.js";

const rules = alertRules(readFileSync(RULES_FILE, "utf8"));

interface RuleTests {
  rule_files: string[];
  tests: Array<{
    name: string;
    alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }>;
  }>;
}

/** The section anchors of a markdown file, as GitHub derives them from its headings. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const [, heading] of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    out.add(
      (heading as string)
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-"),
    );
  }
  return out;
}

describe("the shipped Prometheus rules", () => {
  it("pass promtool check rules", async () => {
    const { code, stdout, stderr } = await promtool(["check", "rules", RULES_FILE]);
    expect(code, `${stdout}${stderr}`).toBe(0);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("pass promtool test rules, whose fixtures make every rule fire and not fire", async () => {
    const file = YAML.parse(readFileSync(RULES_TEST_FILE, "utf8")) as RuleTests;
    expect(file.rule_files).toEqual([path.basename(RULES_FILE)]);
    const checks = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of rules) {
      const mine = checks.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `no fixture makes ${alert} fire`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `no fixture holds ${alert} back`,
      ).toBe(true);
    }
    expect(new Set(checks.map((c) => c.alertname))).toEqual(new Set(rules.map((r) => r.alert)));

    const { code, stdout, stderr } = await promtool(["test", "rules", RULES_TEST_FILE]);
    expect(code, `${stdout}${stderr}`).toBe(0);
    expect(stdout).toContain("SUCCESS");
  });

  it("cover the alerts the issue asks for, each with a severity and a runbook in docs/ALERTS.md", () => {
    expect(rules.map((r) => r.alert)).toEqual([
      "FleethealHostDown",
      "FleethealDockerDown",
      "FleethealContainersNotHealing",
      "FleethealContainerQuarantined",
      "FleethealStormGuardHolding",
      "FleethealImageBreakerOpen",
      "FleethealDeadLettersGrowing",
      "FleethealConsumerLag",
      "FleethealPolicyInvalid",
    ]);
    const sections = anchors(readFileSync(path.join(REPO, "docs", "ALERTS.md"), "utf8"));
    for (const rule of rules) {
      expect(["critical", "warning"], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const link = /^docs\/ALERTS\.md#(.+)$/.exec(rule.annotations?.runbook_url ?? "");
      expect(link?.[1], `${rule.alert}'s runbook_url`).toBe(rule.alert.toLowerCase());
      expect(sections.has(rule.alert.toLowerCase()), `docs/ALERTS.md has no ## ${rule.alert}`).toBe(
        true,
      );
    }
  });

  it("keep their expressions, labels and annotations in the fast variant the alert test runs", () => {
    const fast = alertRules(withForDurations(readFileSync(RULES_FILE, "utf8"), "2s"));
    expect(fast.map(({ for: _, ...rest }) => rest)).toEqual(
      rules.map(({ for: _, ...rest }) => rest),
    );
    expect(fast.map((r) => r.for)).toEqual(
      rules.map((r) => (r.for === undefined ? undefined : "2s")),
    );
  });
});

describe("the example scrape configuration", () => {
  const file = path.join(PROMETHEUS_INFRA, "prometheus.yml");

  it("is valid for Prometheus", async () => {
    const { code, stdout, stderr } = await promtool(["check", "config", "--syntax-only", file]);
    expect(code, `${stdout}${stderr}`).toBe(0);
  });

  it("loads the shipped rules and sends the gateway the read token from a file", () => {
    const config = YAML.parse(readFileSync(file, "utf8")) as {
      rule_files: string[];
      scrape_configs: Array<{
        job_name: string;
        authorization?: { type?: string; credentials_file?: string };
      }>;
    };
    expect(config.rule_files.map((f) => path.basename(f))).toEqual([path.basename(RULES_FILE)]);
    const gateway = config.scrape_configs.find((j) => j.job_name === "fleetheal-gateway");
    expect(gateway?.authorization?.type).toBe("Bearer");
    expect(gateway?.authorization?.credentials_file).toMatch(/^\//);
    expect(config.scrape_configs.map((j) => j.job_name)).toContain("fleetheal-handler");
  });
});
