import { compareInstants, parseInstant } from "../common/nanosecond-time.js";
import {
  ContainerEvent,
  type ContainerSnapshot,
  containerKey,
  eventSubjectMismatch,
  type HostSnapshot,
  type MonitoredContainer,
  SUBJECTS,
} from "../contracts/index.js";
import type { Decision } from "./decisions.js";
import { DependencyFreeHosts } from "./dependency-free-hosts.js";
import { predecessorsOf } from "./dependency-orphans.js";
import { DEPENDENTS_MAX_DELIVER, decideRound, type LocatedParent, log } from "./dependents.js";
import { DEPENDENTS_HANDLER, type DependentsOptions } from "./dependents-round.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";

/**
 * Dependents follow any new run of their parent, not only fleetheal's restarts: Docker's restart
 * policy, `docker restart`, an update tool that replaced the parent with a new container of the
 * same name. Bound to Docker's `start` events; see docs/DEPENDENTS.md.
 */
export function dependentsStartHandler(
  options: DependentsOptions,
): HandlerDefinition<ContainerEvent> {
  const withoutDependencies = new DependencyFreeHosts();
  return {
    name: `${DEPENDENTS_HANDLER}-start`,
    subject: SUBJECTS.eventsWithAction("start"),
    schema: ContainerEvent,
    subjectMismatch: eventSubjectMismatch,
    concurrency: 8,
    maxDeliver: DEPENDENTS_MAX_DELIVER,
    handle: (event, ctx) => decideDependentsOnStart(event, ctx, options, withoutDependencies),
  };
}

/** The decisions for one `start` event; exported for unit tests. */
export async function decideDependentsOnStart(
  event: ContainerEvent,
  ctx: HandlerContext,
  options: DependentsOptions,
  withoutDependencies = new DependencyFreeHosts(),
): Promise<Decision[]> {
  if (event.action !== "start") return [];
  const { host, container } = event;
  const locate = async (
    snapshot: HostSnapshot,
    dangling: ReadonlyMap<string, readonly ContainerSnapshot[]>,
  ): Promise<LocatedParent> => {
    const parent = snapshot.containers.find((c) => c.id === container.id);
    if (!parent) {
      // Not in the snapshot: one from before the agent inspected the container waits for the
      // next; one from well after the start means the container is gone again (a one-off).
      const late = Date.parse(snapshot.at) - Date.parse(event.time) > GONE_AFTER_MS;
      return { parent, fresh: late };
    }
    const fresh = showsRun(parent, event, snapshot);
    if (dangling.size === 0) return { parent, fresh };
    const replaced = await predecessorsOf(parent, dangling, async (id) => {
      const monitored = await ctx.read("monitored", containerKey(host, id));
      return (monitored?.value as MonitoredContainer | undefined)?.name;
    });
    return { parent, fresh, replaced };
  };
  return decideRound(
    {
      trigger: { kind: "started", id: event.id },
      host,
      containerId: container.id,
      locate,
      ownedElsewhere: () => startedByFleetheal(event, ctx),
    },
    ctx,
    options,
    withoutDependencies,
  );
}

/**
 * Docker sets a run's StartedAt a moment before it reports the `start` event (it writes the
 * container's state to disk in between, milliseconds), so the run a start event began started
 * at most this long before the event's time.
 */
const START_EVENT_LAG_NS = 500_000_000n;
/** A snapshot this long after a start that does not show the container: it is gone. */
const GONE_AFTER_MS = 5_000;
/**
 * A snapshot this long after a start that shows the container down again: its new run ended
 * (sooner, the agent may not have inspected the new run yet).
 */
const DOWN_AFTER_MS = 2_000;

/**
 * Whether the snapshot shows the run that `event` began, or a later one. Docker's own start
 * events carry no StartedAt (the agent knows only the previous run's), so the event's time
 * stands for it, less {@link START_EVENT_LAG_NS}, in a snapshot taken after the event that shows
 * the container running (or down again {@link DOWN_AFTER_MS} after it); a synthesized event may
 * carry the run itself. A run shorter than the lag (a crash loop) can be taken for the next one:
 * the round then compares start times with it, one run early.
 */
export function showsRun(
  parent: ContainerSnapshot,
  event: ContainerEvent,
  snapshot: Pick<HostSnapshot, "at">,
): boolean | undefined {
  // Not started yet, as far as the snapshot knows: it predates the start.
  if (!parent.startedAt || parent.state === "created") return false;
  if (event.container.startedAt) {
    const order = compareInstants(parent.startedAt, event.container.startedAt);
    return order === undefined ? undefined : order >= 0;
  }
  const started = parseInstant(parent.startedAt)?.epochNanos;
  if (started === undefined) return undefined;
  const taken = Date.parse(snapshot.at);
  const time = BigInt(event.timeNano);
  const eventMs = Number(time / 1_000_000n);
  const settled = parent.state === "running" || taken - eventMs >= DOWN_AFTER_MS;
  return started >= time - START_EVENT_LAG_NS && taken >= eventMs && settled;
}

/**
 * A start that fleetheal's own command made: the container's ledger holds a command still
 * waiting for its answer (heal's restart, a dependents round's restart or recreate). That
 * command's round covers the dependents, from its record or from the round it belongs to.
 */
export async function startedByFleetheal(
  event: ContainerEvent,
  ctx: HandlerContext,
): Promise<Decision[] | undefined> {
  const entry = await ctx.read("ledger", containerKey(event.host, event.container.id));
  const last = entry?.value.restarts[0];
  if (last?.outcome !== "pending") return undefined;
  return [
    log("debug", `started by fleetheal's command ${last.commandId}; that round follows up`, {
      host: event.host,
      containerId: event.container.id,
    }),
  ];
}
