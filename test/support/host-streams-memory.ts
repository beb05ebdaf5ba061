import type { StreamConfig } from "@nats-io/jetstream";
import type { HostStreamsApi } from "../../common/host-event-streams.js";
import type { StreamSettings } from "../../common/jetstream-resources.js";
import { subjectMatches } from "../../common/nats-permissions.js";

/** Whether two subject patterns can match a common subject (for literal-prefix patterns). */
function overlaps(a: string, b: string): boolean {
  return subjectMatches(a, b.replace(/>$/, "x")) || subjectMatches(b, a.replace(/>$/, "x"));
}

/**
 * JetStream's streams in memory, as far as the hosts' events streams use them: creation refuses
 * subjects that overlap another stream's (as nats-server does), an update merges the change into
 * the stored configuration. Every call is logged in {@link calls}.
 */
export class InMemoryStreams implements HostStreamsApi {
  readonly streams = new Map<string, StreamConfig>();
  readonly calls: string[] = [];
  /** Runs before the next update is applied, to let someone else update first. */
  beforeUpdate: (() => void) | undefined;

  async config(name: string): Promise<StreamConfig | undefined> {
    await Promise.resolve();
    this.calls.push(`info ${name}`);
    const config = this.streams.get(name);
    return config && structuredClone(config);
  }

  async create(config: StreamSettings): Promise<void> {
    await Promise.resolve();
    this.calls.push(`create ${config.name}`);
    if (this.streams.has(config.name)) return;
    for (const other of this.streams.values()) {
      for (const s of other.subjects ?? []) {
        if ((config.subjects ?? []).some((c) => overlaps(c, s))) {
          throw new Error("subjects overlap with an existing stream");
        }
      }
    }
    this.streams.set(config.name, structuredClone(config) as StreamConfig);
  }

  async update(name: string, change: Partial<StreamConfig>): Promise<void> {
    await Promise.resolve();
    this.calls.push(`update ${name} ${Object.keys(change).join(",")}`);
    const before = this.beforeUpdate;
    this.beforeUpdate = undefined;
    before?.();
    const current = this.streams.get(name);
    if (!current) throw new Error("stream not found");
    this.streams.set(name, { ...current, ...structuredClone(change) });
  }
}
