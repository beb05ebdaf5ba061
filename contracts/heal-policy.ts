import { z } from "zod";
import { HostId } from "./tokens.js";

/** KV bucket holding fleet-wide configuration; the heal policy is under {@link POLICY_KEY}. */
export const CONFIG_BUCKET = "fleetheal_config";
export const POLICY_KEY = "policy";

/**
 * The inclusive range of each policy field a container label can set, stated once: the schema
 * below checks these, and so does each label's own check (policy/policy-labels.ts), so a label
 * and the stored policy never disagree about what is allowed. Durations in seconds.
 */
export const POLICY_RANGES = {
  startPeriodSeconds: { min: 0, max: 86_400 },
  unhealthyForSeconds: { min: 0, max: 86_400 },
  backoffInitialSeconds: { min: 0, max: 86_400 },
  backoffMaxSeconds: { min: 0, max: 86_400 },
  backoffResetAfterSeconds: { min: 0, max: 604_800 },
  /** At most 50: the restart history the ledger keeps. */
  budgetRestarts: { min: 1, max: 50 },
  budgetWindowSeconds: { min: 0, max: 604_800 },
  budgetReleaseAfterHealthySeconds: { min: 0, max: 604_800 },
} as const satisfies Record<string, { min: number; max: number }>;
export type PolicyRange = keyof typeof POLICY_RANGES;

const Seconds = (max: number) => z.number().int().min(0).max(max);
/** A whole number within one of {@link POLICY_RANGES}. */
const Ranged = (range: PolicyRange) =>
  z.number().int().min(POLICY_RANGES[range].min).max(POLICY_RANGES[range].max);

/** A time during which no container is restarted (on the listed hosts, or everywhere). */
export const MaintenanceWindow = z
  .strictObject({
    start: z.iso.datetime({ offset: true }),
    end: z.iso.datetime({ offset: true }),
    /** Hosts it applies to; all hosts when absent. */
    hosts: z.array(HostId).max(10_000).optional(),
    reason: z.string().max(512).optional(),
  })
  .refine((w) => Date.parse(w.end) > Date.parse(w.start), {
    message: "end must be after start",
    path: ["end"],
  });
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

/**
 * What heal does to an unhealthy container (and to a crashed one, with `restartOnExit`):
 * - `restart`: `docker restart`, the default;
 * - `stop`: `docker stop`, for a service that is better down than broken;
 * - `recreate`: a new container from the old one's configuration, under the same name, then the
 *   old one removed (with the `autoheal.recreate.pull` label, the image tag is pulled first);
 * - `notify`: nothing is done to the container; the `alerted` record goes to the webhooks.
 */
export const HealAction = z.enum(["restart", "stop", "recreate", "notify"]);
export type HealAction = z.infer<typeof HealAction>;

/**
 * A pattern for container names or image references: `*` matches any run of characters and `?`
 * one character; everything else matches itself. Matched against the whole name or reference.
 */
export const SelectionPattern = z.string().min(1).max(256);

const Patterns = z.array(SelectionPattern).max(100).default([]);

/** Containers picked out by name or by image; a container matches if either list matches. */
export const ContainerSelector = z.strictObject({
  /** Container names, without Docker's leading slash. */
  names: Patterns,
  /** Image references as the container was created from them (`nginx:1.27`, `ghcr.io/x/*`). */
  images: Patterns,
});
export type ContainerSelector = z.infer<typeof ContainerSelector>;

/**
 * One container whose healing was switched off at run time, by host and name, so that the
 * switch survives a recreate (a new container id under the same name).
 */
export const DisabledContainer = z.strictObject({
  host: HostId,
  /** The container's name, without Docker's leading slash. */
  name: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a Docker container name"),
  /** When it was switched off. */
  since: z.iso.datetime({ offset: true }),
  /** Who switched it off: `gateway:<token name>`, `cli`. */
  by: z.string().min(1).max(128),
  reason: z.string().max(512).optional(),
});
export type DisabledContainer = z.infer<typeof DisabledContainer>;

/**
 * The fleet's healing policy: the defaults every container gets unless its labels override them
 * (see docs/POLICY.md). Stored as JSON in KV `fleetheal_config`, key `policy`; handlers watch it
 * live. Every field has a default, so `{}` is a valid policy.
 *
 * Strict at every depth: an unknown field is an error, never dropped. A typo would otherwise leave
 * a default in force, and any JSON stored under the key by mistake (a JetStream ack echoed there
 * is `{"stream":…,"seq":…}`) would parse as the defaults and undo a pause. The gateway's
 * `PUT /policy` and every reader of the stored policy rely on this one definition.
 */
export const HealPolicy = z.strictObject({
  /** Stop healing everywhere; triggers are deferred until it is lifted. */
  paused: z.boolean().default(false),
  /** Decide and record, but never restart (monitor-only). */
  dryRun: z.boolean().default(false),
  /** After a container starts, health failures are ignored for this long. */
  startPeriodSeconds: Ranged("startPeriodSeconds").default(0),
  /** Act only once a container has been unhealthy for this long. */
  unhealthyForSeconds: Ranged("unhealthyForSeconds").default(0),
  /** Also restart a container that exits with a non-zero code (not a manual stop, not exit 0). */
  restartOnExit: z.boolean().default(false),
  /** What to do to an unhealthy container; a container's `autoheal.action` label overrides it. */
  action: HealAction.default("restart"),
  /**
   * Only these containers are healed, among those that opted in; empty lists select every
   * opted-in container.
   */
  include: ContainerSelector.default({ names: [], images: [] }),
  /** These containers are never healed, even if `include` selects them. */
  exclude: ContainerSelector.default({ names: [], images: [] }),
  /** Containers whose healing was switched off at run time (the API, `fleetheal healing`). */
  disabled: z.array(DisabledContainer).max(10_000).default([]),
  /**
   * Alert (an `unhealed` record, once per incident) when a container has been unhealthy this
   * long and nothing is healing it. 0 turns the alert off.
   */
  notifyUnhealedAfterSeconds: Seconds(604_800).default(600),
  /** Restart the containers that depend on one that was restarted or recreated, by anyone. */
  dependents: z.boolean().default(true),
  backoff: z
    .strictObject({
      /** Wait before the second restart; doubles after each restart (Kubernetes: 10 s). */
      initialSeconds: Ranged("backoffInitialSeconds").default(10),
      /** The longest wait (Kubernetes: 300 s). */
      maxSeconds: Ranged("backoffMaxSeconds").default(300),
      /** Healthy this long after a restart, and the backoff starts over (Kubernetes: 10 min). */
      resetAfterSeconds: Ranged("backoffResetAfterSeconds").default(600),
    })
    .default({ initialSeconds: 10, maxSeconds: 300, resetAfterSeconds: 600 }),
  budget: z
    .strictObject({
      /**
       * Restarts allowed in the window; one more would quarantine the container. At most 50,
       * the history the ledger keeps.
       */
      restarts: Ranged("budgetRestarts").default(5),
      windowSeconds: Ranged("budgetWindowSeconds").default(3_600),
      /** A quarantined container is released after being healthy this long. */
      releaseAfterHealthySeconds: Ranged("budgetReleaseAfterHealthySeconds").default(600),
    })
    .default({ restarts: 5, windowSeconds: 3_600, releaseAfterHealthySeconds: 600 }),
  maintenance: z.array(MaintenanceWindow).max(1_000).default([]),
  /**
   * The storm guard: caps that hold however many containers fail at once. A restart that would
   * exceed one waits (it is redelivered a moment later). 0 means no cap.
   */
  storm: z
    .strictObject({
      /** Restarts in progress at once on one host. */
      maxConcurrentPerHost: z.number().int().min(0).max(10_000).default(5),
      /** Restarts in progress at once across the fleet. */
      maxConcurrentFleet: z.number().int().min(0).max(10_000).default(20),
      /** Restarts started per minute on one host. */
      maxPerMinutePerHost: z.number().int().min(0).max(10_000).default(30),
      /** Restarts started per minute across the fleet. */
      maxPerMinuteFleet: z.number().int().min(0).max(100_000).default(120),
      /**
       * The image breaker: when this many containers of one image fail within the window,
       * fleetheal stops restarting that image's containers and alerts, until failures thin out.
       * A bad image or a dependency they share is not fixed by restarting everything at once.
       */
      imageBreaker: z
        .strictObject({
          failures: z.number().int().min(0).max(10_000).default(20),
          windowSeconds: z.number().int().min(1).max(86_400).default(60),
        })
        .default({ failures: 20, windowSeconds: 60 }),
    })
    .default({
      maxConcurrentPerHost: 5,
      maxConcurrentFleet: 20,
      maxPerMinutePerHost: 30,
      maxPerMinuteFleet: 120,
      imageBreaker: { failures: 20, windowSeconds: 60 },
    }),
});
export type HealPolicy = z.infer<typeof HealPolicy>;

/** The policy in force when none is stored. */
export const DEFAULT_HEAL_POLICY: HealPolicy = HealPolicy.parse({});
