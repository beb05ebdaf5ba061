import { Counter, Gauge, type Registry } from "prom-client";
import { COMMAND_REFUSAL_CODES, PROBE_RESULTS } from "../../contracts/index.js";
import type { FleetView, HostRecord } from "../view/fleet-view.js";
import type { HostStatus } from "../view/health-report.js";

/** Most characters of an agent's version kept as a label value (the snapshot's own bound). */
export const MAX_VERSION_LABEL = 64;
/** What a label value from a host becomes when it is not in the fixed set. */
export const OTHER_LABEL = "other";

/**
 * An agent's version as a label value. The agent writes it, so only letters, digits and `.+-_~`
 * are kept (anything else becomes `_`), at most {@link MAX_VERSION_LABEL} characters, and an
 * empty one is `unknown`: a hostile version cannot break the exposition format or grow a label
 * without end, and each host has one version at a time.
 */
export function versionLabel(version: string): string {
  const safe = version.slice(0, MAX_VERSION_LABEL).replace(/[^A-Za-z0-9.+_~-]/g, "_");
  return safe === "" ? "unknown" : safe;
}

/**
 * Counts keyed by the values of a label, each key from `known` or else counted as
 * {@link OTHER_LABEL}: the keys come from a host, and a label's values must come from a fixed set.
 */
export function boundedCounts(
  counts: Readonly<Record<string, number | undefined>>,
  known: readonly string[],
): Map<string, number> {
  const bounded = new Map<string, number>();
  for (const [key, value] of Object.entries(counts)) {
    if (value === undefined || !Number.isFinite(value) || value < 0) continue;
    const label = known.includes(key) ? key : OTHER_LABEL;
    bounded.set(label, (bounded.get(label) ?? 0) + value);
  }
  return bounded;
}

type Series = Iterable<readonly [Record<string, string>, number]>;

/** One per-host metric: its name, help, labels besides `host`, and a host's series. */
interface HostMetric {
  name: string;
  help: string;
  counter?: true;
  labelNames?: readonly string[];
  series(record: HostRecord, now: number): Series;
}

/** What the per-host series are read from. */
export interface HostSeriesSource {
  view: Pick<FleetView, "list">;
  /** A host's status now (up, stale, down), as /health reports it. */
  statusOf(record: HostRecord, now: number): HostStatus;
  now(): number;
}

const one = (value: number): Series => [[{}, value]];

/** The host series (docs/METRICS.md, "Agents"); counters restart from 0 with the agent. */
function hostMetrics(statusOf: HostSeriesSource["statusOf"]): HostMetric[] {
  return [
    {
      name: "fleetheal_host_up",
      help: "1 while the host's agent is up (its snapshots arrive on time), else 0 (stale or down).",
      series: (r, now) => one(statusOf(r, now) === "up" ? 1 : 0),
    },
    {
      name: "fleetheal_host_last_seen_timestamp_seconds",
      help: "When the gateway last received the host's snapshot, by the NATS server's or the gateway's clock, never the agent's.",
      series: (r) => one(r.receivedAt / 1000),
    },
    {
      name: "fleetheal_host_docker_up",
      help: "1 while the host's agent reaches Docker, else 0, from its last snapshot.",
      series: (r) => one(r.snapshot.docker.status === "up" ? 1 : 0),
    },
    {
      name: "fleetheal_agent_build_info",
      help: "1, with the version of the host's agent (letters, digits and .+-_~ only, at most 64 characters).",
      labelNames: ["version"],
      series: (r) => [[{ version: versionLabel(r.snapshot.agent.version) }, 1]],
    },
    {
      name: "fleetheal_agent_outbox_depth",
      help: "Events the host's agent read from Docker that JetStream has not stored yet, from its last snapshot.",
      series: (r) => one(r.snapshot.outbox.depth),
    },
    {
      name: "fleetheal_agent_outbox_dropped_total",
      help: "Events the host's agent dropped because its outbox was full (it then reconciled), since it started.",
      counter: true,
      series: (r) => one(r.snapshot.outbox.dropped),
    },
    {
      name: "fleetheal_agent_unpublishable_events_total",
      help: "Events the host's agent dropped because NATS refuses them for good (over a message size limit), since it started.",
      counter: true,
      series: (r) => one(r.snapshot.outbox.unpublishable ?? 0),
    },
    {
      name: "fleetheal_agent_unpublishable_events",
      help: "Deprecated: use fleetheal_agent_unpublishable_events_total (the same value, as a counter).",
      series: (r) => one(r.snapshot.outbox.unpublishable ?? 0),
    },
    {
      name: "fleetheal_agent_reconciles_total",
      help: "Reconciles the host's agent started (Docker's containers compared with what it reported), since it started; absent for older agents.",
      counter: true,
      series: (r) => {
        const reconciles = r.snapshot.agent.counters?.reconciles;
        return reconciles === undefined ? [] : one(reconciles);
      },
    },
    {
      name: "fleetheal_agent_probe_results_total",
      help: "Label probe runs on the host by result: pass, fail, error (the probe could not run), refused (target outside FLEETHEAL_PROBE_ALLOW, once per container and labels); absent for older agents.",
      counter: true,
      labelNames: ["result"],
      series: (r) => labelled("result", r.snapshot.agent.counters?.probeResults, PROBE_RESULTS),
    },
    {
      name: "fleetheal_agent_commands_refused_total",
      help: "Restart and stop commands the host's agent refused, by refusal code (docs/AGENT.md), since it started.",
      counter: true,
      labelNames: ["code"],
      series: (r) =>
        labelled("code", r.snapshot.agent.commandRefusals?.refused, COMMAND_REFUSAL_CODES),
    },
  ];
}

function labelled(
  name: string,
  counts: Readonly<Record<string, number | undefined>> | undefined,
  known: readonly string[],
): Series {
  if (counts === undefined) return [];
  return [...boundedCounts(counts, known)].map(([value, n]) => [{ [name]: value }, n] as const);
}

/** The collector every per-host metric shares: each scrape reads the hosts' last snapshots. */
function collectFrom(source: HostSeriesSource, metric: HostMetric) {
  return function collect(this: {
    reset(): void;
    inc(labels: Record<string, string>, value: number): void;
  }): void {
    this.reset();
    const now = source.now();
    for (const record of source.view.list()) {
      for (const [labels, value] of metric.series(record, now)) {
        // inc, not set: two unknown keys of one host both count under `other`.
        this.inc({ host: record.snapshot.host, ...labels }, value);
      }
    }
  };
}

/**
 * Registers one series per host (and label value) for what its agent reports in its snapshot:
 * whether it is up, when it was last heard, Docker, its outbox, its version and its counters.
 * A host removed from the fleet loses its series at the next scrape.
 */
export function registerHostMetrics(registry: Registry, source: HostSeriesSource): void {
  for (const metric of hostMetrics((r, now) => source.statusOf(r, now))) {
    const options = {
      name: metric.name,
      help: metric.help,
      labelNames: ["host", ...(metric.labelNames ?? [])],
      registers: [registry],
      collect: collectFrom(source, metric),
    };
    if (metric.counter) new Counter(options);
    else new Gauge(options);
  }
}
