import {
  type AgentCounters,
  type CommandRefusals,
  type ContainerSnapshot,
  type HealthStatus,
  HOST_SNAPSHOT_TYPE,
  type HostSnapshot,
} from "../contracts/index.js";
import type { ContainerDetails } from "./docker-engine.js";
import { type PublishedLabels, relevantLabels } from "./labels.js";
import { isOptedIn, type OptInPolicy } from "./opt-in.js";
import type { ProbeView } from "./probes/prober.js";

/** Identity of the agent, copied into every snapshot. */
export interface AgentIdentity {
  host: string;
  version: string;
  startedAt: Date;
  heartbeatMs: number;
  optIn: OptInPolicy;
  /** The operator keys whose signed commands the agent accepts. */
  commandKeys: readonly string[];
  /** Whether it accepts restart and stop without a signature. */
  acceptsUnsignedCommands: boolean;
}

/** Host-level figures that live elsewhere in the agent, read when a snapshot is taken. */
export interface SnapshotExtras {
  outbox: HostSnapshot["outbox"];
  lastEventTimeNano: string | undefined;
  /** The label probe's view of a container, if it has one. */
  probe: (id: string) => ProbeView | undefined;
  /** What the command service turned away. */
  commandRefusals: CommandRefusals;
  /** What the agent process counted since it started. */
  counters: AgentCounters;
}

/**
 * A container's health as the agent judges it, with the output of the check that says so:
 * Docker's HEALTHCHECK, or, for a running container without one, its label probe once the probe
 * has a verdict. The snapshot, the events and the command executor all judge by this.
 */
export function judgedHealth(
  details: ContainerDetails,
  probe: ProbeView | undefined,
): { health: HealthStatus; output: string | undefined } {
  const running = details.state === "running" || details.state === "paused";
  if (!details.hasHealthcheck && probe?.health && running) {
    return { health: probe.health, output: probe.lastOutput || undefined };
  }
  return { health: details.health, output: details.lastHealthOutput };
}

/**
 * The agent's live picture of its host: every container as last inspected, and whether Docker is
 * reachable. It is the single source for snapshots and for the incident (StartedAt) stamped on
 * forwarded events.
 */
export class HostState {
  private readonly containers = new Map<string, ContainerDetails>();
  private docker: HostSnapshot["docker"] = { status: "down", error: "not connected yet" };
  private seq = 0;

  constructor(private readonly identity: AgentIdentity) {}

  /** Records a container's details; returns true if anything a snapshot shows changed. */
  upsert(details: ContainerDetails): boolean {
    const previous = this.containers.get(details.id);
    this.containers.set(details.id, details);
    return previous === undefined || JSON.stringify(previous) !== JSON.stringify(details);
  }

  remove(id: string): boolean {
    return this.containers.delete(id);
  }

  /** Drops every container not in `ids` (after a full list); returns the ids dropped. */
  retainOnly(ids: ReadonlySet<string>): string[] {
    const dropped = [...this.containers.keys()].filter((id) => !ids.has(id));
    for (const id of dropped) this.containers.delete(id);
    return dropped;
  }

  get(id: string): ContainerDetails | undefined {
    return this.containers.get(id);
  }

  ids(): string[] {
    return [...this.containers.keys()];
  }

  optedIn(details: Pick<ContainerDetails, "labels">): boolean {
    return isOptedIn(this.identity.optIn, details.labels);
  }

  setDockerUp(version: string): boolean {
    const changed = this.docker.status !== "up" || this.docker.version !== version;
    this.docker = { status: "up", version };
    return changed;
  }

  setDockerDown(error: string): boolean {
    const trimmed = error.slice(0, 1024);
    const changed = this.docker.status !== "down" || this.docker.error !== trimmed;
    this.docker = {
      status: "down",
      ...(this.docker.version ? { version: this.docker.version } : {}),
      error: trimmed,
    };
    return changed;
  }

  get dockerUp(): boolean {
    return this.docker.status === "up";
  }

  /**
   * One container as published: relevant labels only, within the size limits (what is cut is
   * marked), health from Docker or the probe.
   */
  containerSnapshot(
    details: ContainerDetails,
    probe: ProbeView | undefined,
    withoutLabels = false,
  ): ContainerSnapshot {
    const { hasHealthcheck, ipAddresses: _ips, labels, ...rest } = details;
    const published = withoutLabels
      ? withoutAnyLabel(relevantLabels(labels, this.identity.optIn.label))
      : relevantLabels(labels, this.identity.optIn.label);
    const base: ContainerSnapshot = {
      ...rest,
      labels: published.labels,
      ...(published.cut ? { labelsCut: published.cut } : {}),
      optedIn: this.optedIn(details),
      healthSource: hasHealthcheck ? "docker" : "none",
    };
    if (hasHealthcheck || !probe) return base;
    const running = details.state === "running" || details.state === "paused";
    return {
      ...base,
      probe: probe.probe,
      ...(running && probe.health
        ? {
            health: probe.health,
            healthSource: "probe",
            failingStreak: probe.failingStreak,
            ...(probe.lastOutput ? { lastHealthOutput: probe.lastOutput } : {}),
          }
        : {}),
    };
  }

  /**
   * A complete snapshot, numbered in the order taken. `withoutLabels`: every container's labels
   * are left out (and counted in its `labelsCut`), for when the whole snapshot is too large for
   * NATS; the host then stays visible, its labels do not.
   */
  snapshot(now: Date, extras: SnapshotExtras, withoutLabels = false): HostSnapshot {
    this.seq++;
    const containers = [...this.containers.values()]
      .map((d) => this.containerSnapshot(d, extras.probe(d.id), withoutLabels))
      .sort((a, b) => a.name.localeCompare(b.name));
    return {
      type: HOST_SNAPSHOT_TYPE,
      v: 1,
      host: this.identity.host,
      seq: this.seq,
      at: now.toISOString(),
      heartbeatMs: this.identity.heartbeatMs,
      agent: {
        version: this.identity.version,
        startedAt: this.identity.startedAt.toISOString(),
        label: this.identity.optIn.label,
        watchAll: this.identity.optIn.watchAll,
        uptimeSeconds: Math.max(
          0,
          Math.floor((now.getTime() - this.identity.startedAt.getTime()) / 1000),
        ),
        commandKeys: [...this.identity.commandKeys],
        acceptsUnsignedCommands: this.identity.acceptsUnsignedCommands,
        commandRefusals: extras.commandRefusals,
        counters: extras.counters,
      },
      docker: { ...this.docker },
      outbox: extras.outbox,
      ...(extras.lastEventTimeNano ? { lastEventTimeNano: extras.lastEventTimeNano } : {}),
      containers,
    };
  }
}

/** The same container with none of its labels, each counted as dropped. */
function withoutAnyLabel({ labels, cut }: PublishedLabels): PublishedLabels {
  const dropped = (cut?.dropped ?? 0) + Object.keys(labels).length;
  return dropped + (cut?.truncated ?? 0) > 0
    ? { labels: {}, cut: { truncated: 0, dropped } }
    : { labels: {} };
}
