import {
  type ContainerSnapshot,
  HOST_SNAPSHOT_TYPE,
  type HostSnapshot,
} from "../contracts/index.js";
import type { ContainerDetails } from "./docker-engine.js";
import { isOptedIn, type OptInPolicy } from "./opt-in.js";

/** Identity of the agent, copied into every snapshot. */
export interface AgentIdentity {
  host: string;
  version: string;
  startedAt: string;
  heartbeatMs: number;
  optIn: OptInPolicy;
}

/**
 * The agent's live picture of its host: every container as last inspected, and whether Docker is
 * reachable. It is the single source for snapshots and for the incident (StartedAt) stamped on
 * forwarded events.
 */
export class HostState {
  private readonly containers = new Map<string, ContainerSnapshot>();
  private docker: HostSnapshot["docker"] = { status: "down", error: "not connected yet" };
  private seq = 0;

  constructor(private readonly identity: AgentIdentity) {}

  /** Records a container's details; returns true if anything a snapshot shows changed. */
  upsert(details: ContainerDetails): boolean {
    const next: ContainerSnapshot = {
      ...details,
      optedIn: isOptedIn(this.identity.optIn, details.labels),
    };
    const previous = this.containers.get(details.id);
    this.containers.set(details.id, next);
    return previous === undefined || JSON.stringify(previous) !== JSON.stringify(next);
  }

  remove(id: string): boolean {
    return this.containers.delete(id);
  }

  /** Drops every container not in `ids` (after a full list); returns whether any was dropped. */
  retainOnly(ids: ReadonlySet<string>): boolean {
    let changed = false;
    for (const id of this.containers.keys()) {
      if (!ids.has(id)) changed = this.containers.delete(id) || changed;
    }
    return changed;
  }

  get(id: string): ContainerSnapshot | undefined {
    return this.containers.get(id);
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

  /** A complete snapshot, numbered in the order taken. */
  snapshot(now: Date): HostSnapshot {
    this.seq++;
    return {
      type: HOST_SNAPSHOT_TYPE,
      v: 1,
      host: this.identity.host,
      seq: this.seq,
      at: now.toISOString(),
      heartbeatMs: this.identity.heartbeatMs,
      agent: {
        version: this.identity.version,
        startedAt: this.identity.startedAt,
        label: this.identity.optIn.label,
        watchAll: this.identity.optIn.watchAll,
      },
      docker: { ...this.docker },
      containers: [...this.containers.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
  }
}
