import { compareInstants } from "../common/nanosecond-time.js";
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
  const run = container.startedAt;
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

  async function locate(
    snapshot: HostSnapshot,
    dangling: ReadonlyMap<string, readonly ContainerSnapshot[]>,
  ): Promise<LocatedParent> {
    const parent = snapshot.containers.find((c) => c.id === container.id);
    if (!parent) {
      // Not in the snapshot: one from before the container was created waits for the next; a
      // later one means it is gone again (a one-off).
      return { parent, fresh: Date.parse(snapshot.at) > Date.parse(event.time) };
    }
    const fresh =
      run && parent.startedAt ? (compareInstants(parent.startedAt, run) ?? 0) >= 0 : undefined;
    if (dangling.size === 0) return { parent, fresh };
    const replaced = await predecessorsOf(parent, dangling, async (id) => {
      const monitored = await ctx.read("monitored", containerKey(host, id));
      return (monitored?.value as MonitoredContainer | undefined)?.name;
    });
    return { parent, fresh, replaced };
  }
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
