import { z } from "zod";
import {
  CommandOutcome,
  ContainerEvent,
  ContainerSnapshot,
  DisabledContainer,
  HealPolicy,
  HostId,
  LedgerEntry,
  parseDuration,
  RemediationRecord,
} from "../../contracts/index.js";
import { ContainerCounts } from "../view/container-counts.js";
import { HostStatus } from "../view/health-report.js";
import { NotHealing } from "../view/not-healing.js";

/*
 * The gateway's HTTP API, one zod schema per request part and response. The same schemas
 * validate requests and generate /openapi.json, so the document cannot drift from the code.
 */

/** Every error the API returns. `code` is stable; `details` says what exactly was wrong. */
export const ApiErrorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: "Error" });
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

const HostParam = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, {
    message: "host ids contain only letters, digits, '_' and '-'",
  });
const ContainerRef = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9_.-]+$/, {
    message: "a container is named by its id, an id prefix (4+ characters) or its name",
  });

export const HostParams = z.object({ host: HostParam });
export const ContainerParams = z.object({ host: HostParam, id: ContainerRef });

/** Query flags accept `1`/`0`/`true`/`false`, as monitoring tools send them. */
const Flag = z
  .enum(["1", "0", "true", "false"], { message: "must be 1, 0, true or false" })
  .transform((v) => v === "1" || v === "true");

export const HealthQuery = z.object({
  /** With `strict=1` the status code is 503 unless the fleet is healthy. */
  strict: Flag.optional(),
});

export const ContainerHealth = ContainerSnapshot.shape.health;

/** A host as the gateway sees it. */
export const HostSummary = z
  .object({
    id: z.string(),
    status: HostStatus,
    lastSeen: z.string(),
    heartbeatMs: z.number().int(),
    docker: z.object({
      status: z.enum(["up", "down"]),
      version: z.string().optional(),
      error: z.string().optional(),
    }),
    agent: z.object({
      version: z.string(),
      startedAt: z.string(),
      uptimeSeconds: z.number().int(),
      label: z.string(),
      watchAll: z.boolean(),
    }),
    outbox: z.object({
      depth: z.number().int(),
      capacity: z.number().int(),
      published: z.number().int(),
      dropped: z.number().int(),
    }),
    containers: ContainerCounts,
    quarantined: z.number().int(),
  })
  .meta({ id: "Host" });
export type HostSummary = z.infer<typeof HostSummary>;

/** A host's credential in a fleet that `fleetheal up` runs: issued, or in use now. */
export const HostCredential = z
  .object({ host: z.string(), state: z.enum(["issued", "connected"]) })
  .meta({ id: "HostCredential" });
export type HostCredential = z.infer<typeof HostCredential>;

export const HostList = z.object({
  hosts: z.array(HostSummary),
  /**
   * Every host with a credential, when the gateway runs inside `fleetheal up` (which issues
   * them): a host that has one but has never reported is listed here only.
   */
  credentials: z.array(HostCredential).optional(),
});

/** `POST /hosts`: the host to add. */
export const AddHostBody = z.strictObject({ host: HostId });

/** What `POST /hosts` answers: the new host's join token, a secret shown once. */
export const AddedHost = z
  .object({ host: z.string(), token: z.string(), created: z.boolean() })
  .meta({ id: "AddedHost" });

/** What `DELETE /hosts/:host` answers. */
export const RemovedHost = z
  .object({ host: z.string(), snapshotDeleted: z.boolean() })
  .meta({ id: "RemovedHost" });

/** Healing state of one container, from the ledger. */
export const Healing = z.object({
  quarantined: z.boolean(),
  quarantine: LedgerEntry.shape.quarantine,
  consecutiveRestarts: z.number().int(),
  lastRestartAt: z.string().optional(),
  /** Restarts in the ledger, most recent first. */
  restarts: LedgerEntry.shape.restarts,
  releasedAt: z.string().optional(),
  healthySince: z.string().optional(),
  /** No restart before this time: the backoff after the last one (absent when none applies). */
  backoffUntil: z.string().optional(),
  /** Restarts counted against the budget in its window, and how many the budget allows. */
  budget: z.object({
    used: z.number().int(),
    allowed: z.number().int(),
    windowSeconds: z.number().int(),
  }),
  /** The policy this container is healed by: the fleet policy with its labels applied. */
  policy: HealPolicy,
  /** Policy labels on the container that were ignored, and why. */
  labelErrors: z.array(z.string()),
  /**
   * Why fleetheal is not healing it now, while it is opted in, running and unhealthy: `held`
   * by the policy (`code`, and `until` when the hold has an end) or `stuck` after a failed
   * attempt (the failure). Absent otherwise.
   */
  notHealing: NotHealing.optional(),
  /**
   * Present while healing is switched off for this container's name on its host (the policy's
   * `disabled` list): who did it, when and why.
   */
  switchedOff: DisabledContainer.optional(),
});
export type Healing = z.infer<typeof Healing>;

/** One container in a listing. */
export const ContainerSummary = z
  .object({
    host: z.string(),
    hostStatus: HostStatus,
    id: z.string(),
    name: z.string(),
    image: z.string(),
    state: ContainerSnapshot.shape.state,
    health: ContainerHealth,
    healthSource: ContainerSnapshot.shape.healthSource,
    optedIn: z.boolean(),
    startedAt: z.string().optional(),
    restartCount: z.number().int(),
    failingStreak: z.number().int(),
    quarantined: z.boolean(),
    /** Restarts by fleetheal recorded in the ledger. */
    restarts: z.number().int(),
    lastRestartAt: z.string().optional(),
    /** Why fleetheal is not healing it now (see `Healing.notHealing`); absent otherwise. */
    notHealing: NotHealing.optional(),
  })
  .meta({ id: "ContainerSummary" });
export type ContainerSummary = z.infer<typeof ContainerSummary>;

export const ContainersQuery = z.object({
  host: HostParam.optional(),
  health: ContainerHealth.optional(),
  state: ContainerSnapshot.shape.state.optional(),
  /** `key` (present) or `key=value`. */
  label: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[^=]+(=.*)?$/, { message: "label filters look like key or key=value" })
    .optional(),
  /** A substring of the container's name, case-insensitive. */
  name: z.string().min(1).max(256).optional(),
  quarantined: Flag.optional(),
  optedIn: Flag.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** The opaque `next` cursor of the previous page. */
  cursor: z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9_-]*$/, { message: "not a cursor returned by this API" })
    .optional(),
});
export type ContainersQuery = z.infer<typeof ContainersQuery>;

export const ContainerPage = z.object({
  containers: z.array(ContainerSummary),
  /** Containers that match the filters, across all pages. */
  total: z.number().int(),
  /** Pass as `cursor` to get the next page; absent on the last page. */
  next: z.string().optional(),
});

export type ContainerPage = z.infer<typeof ContainerPage>;

export const ContainerDetail = z
  .object({
    host: z.string(),
    hostStatus: HostStatus,
    container: ContainerSnapshot,
    healing: Healing,
  })
  .meta({ id: "ContainerDetail" });
export type ContainerDetail = z.infer<typeof ContainerDetail>;

/** One record from the events stream: a Docker transition or a remediation step. */
export const StreamRecord = z
  .discriminatedUnion("kind", [
    z.object({
      kind: z.literal("event"),
      seq: z.number().int(),
      subject: z.string(),
      storedAt: z.string(),
      event: ContainerEvent,
    }),
    z.object({
      kind: z.literal("remediation"),
      seq: z.number().int(),
      subject: z.string(),
      storedAt: z.string(),
      remediation: RemediationRecord,
    }),
  ])
  .meta({ id: "StreamRecord" });
export type StreamRecord = z.infer<typeof StreamRecord>;

export const EventKind = z.enum(["event", "remediation"]);

export const EventsQuery = z.object({
  host: HostParam.optional(),
  /** A full container id (events are keyed by id). */
  container: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, { message: "a full container id" })
    .optional(),
  kind: EventKind.optional(),
  /** ISO-8601 time, or a duration back from now such as `15m`, `2h`. Default 1h. */
  since: z
    .string()
    .max(64)
    .refine(
      (v) =>
        parseDuration(v) !== undefined ||
        z.iso.datetime({ offset: true }).safeParse(v).success ||
        z.iso.date().safeParse(v).success,
      { message: "a duration back from now (30s, 15m, 2h) or an ISO-8601 time" },
    )
    .optional(),
  /** Resume after this stream sequence (the `next` of the previous page). */
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type EventsQuery = z.infer<typeof EventsQuery>;

export const EventsPage = z.object({
  records: z.array(StreamRecord),
  /** Present when the page is full: pass it as `after` to continue. */
  next: z.number().int().optional(),
});

export type EventsPage = z.infer<typeof EventsPage>;

export const EventStreamQuery = EventsQuery.pick({ host: true, container: true, kind: true });

/** The windows of `GET /history/counts`: the last hour, or the last day. */
export const HistoryWindow = z.enum(["1h", "24h"]);
export type HistoryWindow = z.infer<typeof HistoryWindow>;

export const HistoryCountsQuery = z.object({
  window: HistoryWindow.default("1h"),
  /** Only this host's records; the whole fleet when absent. */
  host: HostParam.optional(),
});
export type HistoryCountsQuery = z.infer<typeof HistoryCountsQuery>;

/** Restarts (`restarted` records), failed attempts (`failed` records) and unhealthy transitions. */
const HistoryTotals = z.object({
  restarts: z.number().int(),
  failed: z.number().int(),
  unhealthy: z.number().int(),
});

/** What `GET /history/counts` answers: fixed buckets of the window, oldest first. */
export const HistoryCounts = z
  .object({
    window: HistoryWindow,
    host: z.string().optional(),
    /** The first bucket's start; buckets are aligned to their size. */
    from: z.string(),
    /** When the counts were taken: the last bucket holds it. */
    to: z.string(),
    bucketSeconds: z.number().int(),
    buckets: z.array(HistoryTotals.extend({ start: z.string() })),
    totals: HistoryTotals,
    /** Totals by host, busiest first; at most 100 are listed, `hostsOmitted` more are not. */
    hosts: z.array(HistoryTotals.extend({ host: z.string() })),
    hostsOmitted: z.number().int(),
    /** Stored records read to count these. */
    scanned: z.number().int(),
    /** Present when the counts are incomplete: too many records to read, or out of time. */
    truncated: z.enum(["scan-limit", "deadline"]).optional(),
  })
  .meta({ id: "HistoryCounts" });
export type HistoryCounts = z.infer<typeof HistoryCounts>;

/** Body of `POST /containers/:host/:id/restart`. */
export const RestartRequest = z
  .object({
    reason: z.string().min(1).max(512).optional(),
    /** Docker's stop timeout for this restart; it wins over the container's label. */
    stopTimeoutSeconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict();

export const RestartResult = z.object({
  remediationId: z.string(),
  commandId: z.string(),
  outcome: CommandOutcome,
  code: z.string(),
  message: z.string(),
  duplicate: z.boolean(),
  durationMs: z.number(),
});
export type RestartResult = z.infer<typeof RestartResult>;

export const ReleaseRequest = z.object({ reason: z.string().min(1).max(512).optional() }).strict();
export const ReleaseResult = z.object({
  host: z.string(),
  containerId: z.string(),
  name: z.string(),
  releasedAt: z.string(),
});

export const PauseRequest = z.object({ reason: z.string().min(1).max(512).optional() }).strict();
export const PauseResult = z.object({ paused: z.boolean(), revision: z.number().int() });

/** Body of `PUT /containers/:host/:id/healing`. */
export const HealingSwitchRequest = z
  .object({
    /** `false` switches healing off for the container's name on its host; `true` back on. */
    enabled: z.boolean(),
    /** Why, for the policy's `disabled` entry and the audit record. */
    reason: z.string().min(1).max(512).optional(),
  })
  .strict();

/** What `PUT /containers/:host/:id/healing` answers: the switch's state after the request. */
export const HealingSwitchResult = z
  .object({
    host: z.string(),
    /** The container name the switch is kept under. */
    name: z.string(),
    /** The current container of that name; absent when none has it now. */
    containerId: z.string().optional(),
    enabled: z.boolean(),
    /** False when the switch already was in that state: nothing was written or recorded. */
    changed: z.boolean(),
    /** The policy's KV revision after the request (0: no policy is stored). */
    revision: z.number().int(),
    /** The policy's `disabled` entry, while healing is switched off. */
    switchedOff: DisabledContainer.optional(),
  })
  .meta({ id: "HealingSwitchResult" });
export type HealingSwitchResult = z.infer<typeof HealingSwitchResult>;

/** The stored policy, with every default filled in, and its KV revision (also the ETag). */
export const PolicyDocument = z
  .object({
    policy: HealPolicy,
    /** 0 when no policy is stored and the defaults apply. */
    revision: z.number().int(),
  })
  .meta({ id: "PolicyDocument" });
export type PolicyDocument = z.infer<typeof PolicyDocument>;

export const ReadyBody = z.object({
  ready: z.boolean(),
  nats: z.enum(["connected", "disconnected"]),
  viewLoaded: z.boolean(),
});
