// A real Prometheus per test (Debian's `prometheus` package), in the manner of startNatsServer: its
// own config, rule file and data dir in a temp dir, a free loopback port, readiness through
// /-/ready, and a dispose that stops it and removes the dir. Also promtool, and the shipped rules
// with their `for:` durations shortened, so that a test can make them fire in seconds.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import {
  exitOf,
  findExecutable,
  hasExited,
  markOwned,
  run,
  sweepAbandonedOnce,
  tailFile,
  terminate,
  trackChild,
} from "./children.js";
import { REPO } from "./fleetheal.js";
import { freePort } from "./ports.js";
import { GiveUpWaiting, waitFor } from "./wait.js";

/** infra/prometheus: the shipped scrape configuration and rules. */
export const PROMETHEUS_INFRA = path.join(REPO, "infra", "prometheus");
export const RULES_FILE = path.join(PROMETHEUS_INFRA, "rules", "fleetheal.rules.yml");
export const RULES_TEST_FILE = path.join(PROMETHEUS_INFRA, "rules", "fleetheal.rules.test.yml");

/** CI installs both binaries; a test that needs them fails, never skips, without them. */
const INSTALL_HINT =
  "run `bash infra/install.sh --test`, which installs Debian's prometheus package (prometheus and promtool)";

/** The path of promtool; throws, saying how to install it, when it is missing. */
export function promtoolPath(): Promise<string> {
  return findExecutable("promtool", INSTALL_HINT);
}

/** Runs promtool with `args` in `cwd`; resolves with its exit code and output, whatever the code. */
export async function promtool(
  args: string[],
  cwd = PROMETHEUS_INFRA,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(await promtoolPath(), args, { allowFailure: true, cwd, timeoutMs: 60_000 });
}

/** One alerting rule of a rule file, as far as tests read it. */
export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleFile {
  groups: Array<{ name: string; rules: AlertRule[] }>;
}

/** The alerting rules of a rule file's text, in order. */
export function alertRules(text: string): AlertRule[] {
  return (YAML.parse(text) as RuleFile).groups.flatMap((g) => g.rules);
}

/**
 * The rule file `text` with every `for:` set to `duration`: the shipped expressions, labels and
 * annotations, only faster to fire. Rules without a `for:` fire at their first evaluation anyway.
 */
export function withForDurations(text: string, duration: string): string {
  const file = YAML.parse(text) as RuleFile;
  for (const rule of file.groups.flatMap((g) => g.rules)) {
    if (rule.for !== undefined) rule.for = duration;
  }
  return YAML.stringify(file);
}

/** One scrape job of a test's Prometheus. */
export interface ScrapeJob {
  name: string;
  /** `host:port` of each target. */
  targets: string[];
  /** A bearer token, written to a file that `authorization.credentials_file` names. */
  bearerToken?: string;
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** The text of a rule file to load. */
  rules?: string;
  /** Scrape and evaluation interval; default 1 s. */
  intervalSeconds?: number;
}

/** An alert as `/api/v1/alerts` lists it. */
export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

/** A scrape target as `/api/v1/targets` lists it. */
export interface PrometheusTarget {
  labels: Record<string, string>;
  health: "up" | "down" | "unknown";
  lastError: string;
}

/** A rule as `/api/v1/rules` lists it. */
export interface PrometheusRule {
  name: string;
  type: "alerting" | "recording";
  health: "ok" | "err" | "unknown";
  lastError?: string;
}

export interface PrometheusHandle extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The temp dir holding the config, rules, token files, data and log; removed on dispose. */
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  /** The alerts Prometheus holds now, pending and firing. */
  alerts(): Promise<PrometheusAlert[]>;
  /** The active scrape targets. */
  targets(): Promise<PrometheusTarget[]>;
  /** Every rule loaded, with the health of its last evaluation. */
  rules(): Promise<PrometheusRule[]>;
  /** An instant query: each series' labels and value. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: number }>>;
}

const DIR_PREFIX = "fleetheal-prometheus-";
const STARTUP_TIMEOUT_MS = 30_000;

/**
 * Starts Prometheus on a free port of 127.0.0.1 with a configuration of `options.jobs` and
 * `options.rules`, and waits until /-/ready answers 200. Dispose stops it (SIGTERM, then SIGKILL)
 * and removes its temp dir.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusHandle> {
  const binary = await findExecutable("prometheus", INSTALL_HINT);
  await sweepAbandonedOnce(DIR_PREFIX, "prometheus");
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  let child: ChildProcess | undefined;
  try {
    await markOwned(dir);
    const configFile = await writeConfig(dir, options);
    const logFile = path.join(dir, "prometheus.log");
    const port = await freePort();
    const fd = openSync(logFile, "a");
    try {
      child = spawn(
        binary,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${path.join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=info",
        ],
        { stdio: ["ignore", fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    const proc = child;
    trackChild(proc, "SIGKILL");
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (hasExited(proc)) {
          const { code, signal } = await exitOf(proc);
          throw new GiveUpWaiting(
            `prometheus exited during startup (code ${code}, signal ${signal})`,
          );
        }
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        await res.body?.cancel();
        return res.status === 200;
      },
      {
        timeoutMs: STARTUP_TIMEOUT_MS,
        intervalMs: 100,
        message: `prometheus on ${url} never ready`,
      },
    ).catch(async (err: unknown) => {
      throw new Error(
        `prometheus failed to start: ${(err as Error).message}\n--- ${logFile} (tail) ---\n${await tailFile(logFile, 30)}`,
        { cause: err },
      );
    });

    const api = async <T>(route: string): Promise<T> => {
      const res = await fetch(`${url}/api/v1/${route}`, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== "success") throw new Error(`GET /api/v1/${route}: ${body.error}`);
      return body.data;
    };
    let disposed = false;
    return {
      url,
      dir,
      logFile,
      pid: proc.pid as number,
      alerts: async () => (await api<{ alerts: PrometheusAlert[] }>("alerts")).alerts,
      targets: async () =>
        (await api<{ activeTargets: PrometheusTarget[] }>("targets?state=active")).activeTargets,
      rules: async () =>
        (await api<{ groups: Array<{ rules: PrometheusRule[] }> }>("rules")).groups.flatMap(
          (g) => g.rules,
        ),
      query: async (expr) =>
        (
          await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
            `query?query=${encodeURIComponent(expr)}`,
          )
        ).result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) })),
      async [Symbol.asyncDispose]() {
        if (disposed) return;
        disposed = true;
        await terminate(proc, "SIGTERM", 10_000);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) await terminate(child, "SIGKILL", 0);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Writes prometheus.yml (and the rule and token files it names) into `dir`; returns its path. */
async function writeConfig(dir: string, options: PrometheusOptions): Promise<string> {
  const interval = `${options.intervalSeconds ?? 1}s`;
  const ruleFiles: string[] = [];
  if (options.rules !== undefined) {
    const rulesFile = path.join(dir, "rules.yml");
    await writeFile(rulesFile, options.rules);
    ruleFiles.push(rulesFile);
  }
  const scrapeConfigs = [];
  for (const job of options.jobs) {
    let authorization: { type: string; credentials_file: string } | undefined;
    if (job.bearerToken !== undefined) {
      const tokenFile = path.join(dir, `${job.name}.token`);
      await writeFile(tokenFile, job.bearerToken, { mode: 0o600 });
      authorization = { type: "Bearer", credentials_file: tokenFile };
    }
    scrapeConfigs.push({
      job_name: job.name,
      scrape_interval: interval,
      scrape_timeout: interval,
      ...(authorization ? { authorization } : {}),
      static_configs: [{ targets: job.targets }],
    });
  }
  const configFile = path.join(dir, "prometheus.yml");
  await writeFile(
    configFile,
    YAML.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: ruleFiles,
      scrape_configs: scrapeConfigs,
    }),
  );
  return configFile;
}
