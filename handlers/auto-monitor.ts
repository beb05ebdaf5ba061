import {
  ContainerEvent,
  containerKey,
  eventSubjectMismatch,
  type MonitoredContainer,
  SUBJECTS,
} from "../contracts/index.js";
import type { Decision } from "./decisions.js";
import type { HandlerContext, HandlerDefinition } from "./handler.js";

/**
 * Records every opted-in container as it starts, and says so in the log, as operators of the
 * popular autoheal tool are used to seeing.
 */
export function autoMonitorHandler(): HandlerDefinition<ContainerEvent> {
  return {
    name: "auto-monitor",
    subject: SUBJECTS.eventsWithAction("start"),
    schema: ContainerEvent,
    subjectMismatch: eventSubjectMismatch,
    concurrency: 16,
    maxDeliver: 10,
    handle: decideAutoMonitor,
  };
}

/** The auto-monitor decision for one `start` event; exported for unit tests. */
export function decideAutoMonitor(event: ContainerEvent, _ctx: HandlerContext): Decision[] {
  if (event.action !== "start" || !event.container.optedIn) return [];
  const { host, container } = event;
  const startedAt = event.time;
  return [
    {
      kind: "update",
      store: "monitored",
      key: containerKey(host, container.id),
      update: (current) => {
        const previous = current as MonitoredContainer | undefined;
        // A redelivered start event must not count twice.
        const repeat = previous?.lastStartedAt === startedAt;
        const next: MonitoredContainer = {
          v: 1,
          host,
          containerId: container.id,
          name: container.name,
          image: container.image,
          firstSeenAt: previous?.firstSeenAt ?? startedAt,
          lastStartedAt: startedAt,
          starts: (previous?.starts ?? 0) + (repeat ? 0 : 1),
        };
        return next;
      },
    },
    {
      kind: "log",
      level: "info",
      msg: `Auto-monitoring enabled for container '${container.name}' (${container.id.slice(0, 12)}) on host ${host}`,
      fields: { host, containerId: container.id, name: container.name, image: container.image },
    },
  ];
}
