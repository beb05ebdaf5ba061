import type { Logger } from "../common/logger.js";
import {
  CONTAINER_EVENT_TYPE,
  type ContainerAction,
  ContainerEvent,
  containerEventId,
  encode,
  eventSubject,
} from "../contracts/index.js";
import { isoFromTimeNano, labelsFromAttributes } from "./docker-event.js";
import type { HostState } from "./host-state.js";
import { relevantLabels } from "./labels.js";
import type { OutboxMessage } from "./outbox.js";
import type { Reported, ReportedIdentity } from "./reconciler.js";

/** Where a forwarded transition comes from (see ContainerEvent.source). */
export type EventSource = "docker" | "reconcile" | "probe" | "resync";

/** What the translator has forwarded, made up and refused. */
export interface TranslatorStats {
  forwarded: number;
  synthesized: number;
  invalidEvents: number;
}

/** What the translator reads and tells: the state it names containers from, and the outbox. */
export interface EventTranslatorOptions {
  hostId: string;
  /** The opt-in label: which labels an event carries, and whether its container opted in. */
  label: string;
  state: Pick<HostState, "get" | "optedIn">;
  /** What subscribers were last told, which names a container that is gone from the state. */
  reported: {
    told(containerId: string): Reported | undefined;
    note(
      containerId: string,
      action: ContainerAction,
      identity: ReportedIdentity,
      unhealthySince?: string,
    ): void;
    /** Since when an `unhealthy` event at `at` says the container is unhealthy, if known. */
    unhealthySince(containerId: string, at: string, resync: boolean): string | undefined;
  };
  /**
   * The container's last health check output as the agent judges its health (Docker's
   * `State.Health.Log`, or its label probe's), already made safe by common/health-output.ts.
   */
  healthOutput(containerId: string): string | undefined;
  enqueue(message: OutboxMessage): void;
  log: Logger;
  now: () => Date;
  /** Counted into by the translator; the agent's own stats, so that they stay in one place. */
  stats: TranslatorStats;
}

/**
 * Turns a container transition into a contract event in the outbox: Docker's own, or one the
 * agent found that Docker did not report. An event that does not fit the contract is logged and
 * counted, never sent.
 */
export class EventTranslator {
  /** Containers with a kill or stop since their last start: their next die was asked for. */
  private readonly stopping = new Set<string>();
  private syntheticSeq = 0;

  constructor(private readonly options: EventTranslatorOptions) {}

  /** One event from Docker's stream, with the attributes Docker gave it. */
  docker(
    containerId: string,
    action: ContainerAction,
    timeNano: string,
    attributes: Record<string, string>,
  ): void {
    // Docker announces a stop or kill before the die it causes; a die without one is a crash.
    if (action === "kill" || action === "stop") this.stopping.add(containerId);
    this.publish(containerId, action, timeNano, "docker", attributes);
    if (action === "start" || action === "die" || action === "destroy") {
      this.stopping.delete(containerId);
    }
  }

  /**
   * A transition Docker did not report (a gap, or a label probe), or a re-assertion that a
   * container is still unhealthy (resync), stamped with our clock.
   */
  synthesize(containerId: string, action: ContainerAction, source: EventSource): void {
    // The sequence keeps two made-up events of one millisecond distinct (and their ids).
    const ns =
      BigInt(this.options.now().getTime()) * 1_000_000n + BigInt(this.syntheticSeq++ % 1_000_000);
    this.options.stats.synthesized++;
    this.publish(containerId, action, ns.toString(), source, {});
  }

  private publish(
    containerId: string,
    action: ContainerAction,
    timeNano: string,
    source: EventSource,
    attributes: Record<string, string>,
  ): void {
    const { hostId: host, state, reported, stats } = this.options;
    // A container that is gone from the state (a synthetic destroy) is named from the baseline.
    const current = state.get(containerId);
    const known = current ?? reported.told(containerId);
    const labels = known?.labels ?? labelsFromAttributes(attributes);
    const exitCode = attributes.exitCode ?? (action === "die" ? current?.exitCode : undefined);
    const time = isoFromTimeNano(timeNano);
    const unhealthySince =
      action === "unhealthy"
        ? reported.unhealthySince(containerId, time, source === "resync")
        : undefined;
    const output =
      action === "unhealthy" || action === "healthy"
        ? this.options.healthOutput(containerId)
        : undefined;
    const published = relevantLabels(labels, this.options.label);
    const candidate = {
      type: CONTAINER_EVENT_TYPE,
      v: 1,
      id: containerEventId(host, containerId, timeNano, action),
      host,
      action,
      timeNano,
      time,
      source,
      container: {
        id: containerId,
        name: attributes.name ?? known?.name ?? "",
        image: attributes.image ?? known?.image ?? "",
        // A container's image never changes, so any inspect of it tells; only events that come
        // before its first inspect (a create, a start) can be without.
        ...(known?.imageId ? { imageId: known.imageId } : {}),
        labels: published.labels,
        ...(published.cut ? { labelsCut: published.cut } : {}),
        optedIn: state.optedIn({ labels }),
        // A Docker start/create begins a new run: the known StartedAt is the previous one's.
        ...(known?.startedAt &&
        !(source === "docker" && (action === "start" || action === "create"))
          ? { startedAt: known.startedAt }
          : {}),
      },
      ...(unhealthySince ? { unhealthySince } : {}),
      ...(output ? { healthOutput: output } : {}),
      ...(exitCode !== undefined ? { exitCode: Number(exitCode) } : {}),
      ...(attributes.signal !== undefined ? { signal: attributes.signal } : {}),
      ...(action === "die" && source === "docker"
        ? { stopped: this.stopping.has(containerId) }
        : {}),
    };
    reported.note(
      containerId,
      action,
      {
        name: candidate.container.name,
        image: candidate.container.image,
        imageId: known?.imageId,
        // As Docker gave them: the next event cuts them again, and says what it cut.
        labels,
        startedAt: "startedAt" in candidate.container ? candidate.container.startedAt : undefined,
      },
      unhealthySince,
    );
    const checked = ContainerEvent.safeParse(candidate);
    if (!checked.success) {
      stats.invalidEvents++;
      this.options.log.error(
        { containerId, action, issues: checked.error.issues },
        "event does not fit the contract; not forwarded",
      );
      return;
    }
    this.options.enqueue({
      subject: eventSubject(host, containerId, action),
      payload: encode(checked.data),
      msgId: checked.data.id,
      ...(source === "docker" ? { timeNano } : {}),
    });
    stats.forwarded++;
  }
}
