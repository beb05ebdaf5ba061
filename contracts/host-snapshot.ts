import { z } from "zod";
import { COMMAND_REFUSAL_CODES } from "./command-auth.js";
import { HealthStatus, ImageId } from "./container-event.js";
import { Labels, LabelsCut } from "./labels.js";
import { COMMAND_VERBS, type CommandVerb } from "./subjects.js";
import { ContainerId, HostId } from "./tokens.js";

export const HOST_SNAPSHOT_TYPE = "fleetheal.snapshot.v1.host";

/** Docker's container states. */
export const ContainerState = z.enum([
  "created",
  "running",
  "paused",
  "restarting",
  "removing",
  "exited",
  "dead",
]);
export type ContainerState = z.infer<typeof ContainerState>;

/**
 * One container as its host's agent last saw it. `health` is meaningful only while the container
 * runs; a stopped container reports `none`.
 */
export const ContainerSnapshot = z.object({
  id: ContainerId,
  name: z.string().max(256),
  image: z.string().max(1024),
  /** Docker's id of the container's image (inspect's `Image`); absent from older agents. */
  imageId: ImageId.optional(),
  state: ContainerState,
  health: HealthStatus,
  optedIn: z.boolean(),
  labels: Labels,
  /** What the agent cut from the container's labels to keep them within the limits. */
  labelsCut: LabelsCut.optional(),
  /** Docker's `State.StartedAt`; absent for a container that never started. */
  startedAt: z.iso.datetime({ offset: true }).optional(),
  /** The exit code of the last run, for a container that is not running. */
  exitCode: z.number().int().optional(),
  /** Docker's own restart count (restarts by its restart policy). */
  restartCount: z.number().int().nonnegative(),
  /** Consecutive failed health checks (Docker's, or the label probe's). */
  failingStreak: z.number().int().nonnegative(),
  /** Output of the last health check, trimmed. */
  lastHealthOutput: z.string().max(1024).optional(),
  /** Where `health` comes from: Docker's HEALTHCHECK, a label probe, or nowhere. */
  healthSource: z.enum(["docker", "probe", "none"]),
  /** The label probe, when the container defines one (see docs/AGENT.md). */
  probe: z
    .object({
      /** Absent when the labels name no probe kind (only timing labels, an error). */
      kind: z.enum(["exec", "tcp", "http"]).optional(),
      target: z.string().max(1024),
      /** Why the probe labels are not usable; the probe does not run then. */
      error: z.string().max(512).optional(),
    })
    .optional(),
  /** Docker's HostConfig.NetworkMode: `bridge`, `host`, `none`, `container:<id>`, a network name. */
  networkMode: z.string().max(512).optional(),
  /** docker compose project and service, from the compose labels. */
  compose: z.object({ project: z.string().max(256), service: z.string().max(256) }).optional(),
});
export type ContainerSnapshot = z.infer<typeof ContainerSnapshot>;

const Count = z.number().int().nonnegative();

/** A count per key; a key the reader does not know is dropped, a missing one means 0. */
function countsOf<K extends string>(keys: readonly K[]) {
  return z.object(
    Object.fromEntries(keys.map((k) => [k, Count.optional()])) as Record<
      K,
      z.ZodOptional<typeof Count>
    >,
  );
}

/**
 * What the agent's command service turned away since the agent started: restart and stop
 * commands refused (service error 403, by `CommandRefusalCode`) and requests rejected as
 * malformed (400: not JSON, not the schema, another host), per verb. NATS `$SRV.STATS` reports
 * the malformed ones too, but does not reach agents in other NATS accounts; the snapshot does.
 */
export const CommandRefusals = z.object({
  refused: countsOf(COMMAND_REFUSAL_CODES),
  malformed: countsOf<CommandVerb>(COMMAND_VERBS),
  /** The last refusal or rejection, `<code>: <detail>`. */
  last: z.string().max(512).optional(),
});
export type CommandRefusals = z.infer<typeof CommandRefusals>;

/**
 * How a label probe run ended: `pass` and `fail` are the container's answer; `error`: the probe
 * could not be carried out (Docker's exec failed, no address to probe, the name did not resolve
 * in time); `refused`: its target is outside FLEETHEAL_PROBE_ALLOW, so nothing was contacted.
 */
export const PROBE_RESULTS = ["pass", "fail", "error", "refused"] as const;
export type ProbeResultKind = (typeof PROBE_RESULTS)[number];

/**
 * What the agent process counted since it started; the counts restart from 0 with the process,
 * as Prometheus counters do. They travel in the snapshot because each host's agent is in a NATS
 * account of its own, which `$SRV.STATS` does not leave; the gateway exports them per host.
 * What the command service refused is in `commandRefusals`, the outbox's counts in `outbox`.
 */
export const AgentCounters = z.object({
  /** Reconciles started: Docker's list of containers compared with what was reported. */
  reconciles: Count.optional(),
  /**
   * Label probe runs, by how they ended; `refused` counts once per container and probe labels,
   * since a refused probe does not run again until its labels change.
   */
  probeResults: countsOf(PROBE_RESULTS).optional(),
});
export type AgentCounters = z.infer<typeof AgentCounters>;

/**
 * The full state of one host, published by its agent on every change and on a heartbeat.
 *
 * Kept in the `fleetheal_hosts` KV bucket under the host id, and published on
 * `fleetheal.v1.host.<host>.snapshot`. `at` is the agent's clock when it was taken; consumers
 * judge staleness by when they received it, not by `at`, so that clock skew cannot hide a dead
 * agent.
 */
export const HostSnapshot = z.object({
  type: z.literal(HOST_SNAPSHOT_TYPE),
  v: z.literal(1),
  host: HostId,
  /** Increases with every snapshot an agent process publishes; restarts from 1. */
  seq: z.number().int().positive(),
  at: z.iso.datetime(),
  /** How often the agent publishes when nothing changes, so readers can judge staleness. */
  heartbeatMs: z.number().int().positive(),
  agent: z.object({
    version: z.string().max(64),
    startedAt: z.iso.datetime(),
    /** The opt-in label key the agent honours, and whether it watches every container. */
    label: z.string().max(256),
    watchAll: z.boolean(),
    uptimeSeconds: z.number().int().nonnegative(),
    /**
     * The operator keys (`O…`) whose signatures the agent accepts on restart and stop
     * (`FLEETHEAL_COMMAND_KEYS`). Absent from agents older than signed commands.
     */
    commandKeys: z.array(z.string().max(64)).max(64).optional(),
    /**
     * True when the agent accepts restart and stop without a signature
     * (`FLEETHEAL_INSECURE_UNSIGNED_COMMANDS`). Absent from agents older than signed commands.
     */
    acceptsUnsignedCommands: z.boolean().optional(),
    /** Absent from agents older than signed commands. */
    commandRefusals: CommandRefusals.optional(),
    /** Absent from older agents. */
    counters: AgentCounters.optional(),
  }),
  /** Events read from Docker and not yet stored by JetStream. */
  outbox: z.object({
    depth: z.number().int().nonnegative(),
    capacity: z.number().int().positive(),
    published: z.number().int().nonnegative(),
    /** Events dropped because the outbox was full (the agent then reconciled). */
    dropped: z.number().int().nonnegative(),
    /**
     * Events dropped because NATS refused them for good (larger than the server's or the
     * stream's message size limit): retrying cannot help, and they must not hold up the events
     * behind them. Absent from older agents.
     */
    unpublishable: z.number().int().nonnegative().optional(),
  }),
  /**
   * Where a restarted agent replays Docker's events from: the last event read when all are
   * stored, else just before the oldest one JetStream has not acked yet.
   */
  lastEventTimeNano: z
    .string()
    .regex(/^\d{1,25}$/)
    .optional(),
  docker: z.object({
    status: z.enum(["up", "down"]),
    version: z.string().max(64).optional(),
    /** Why Docker is down, when it is. */
    error: z.string().max(1024).optional(),
  }),
  containers: z.array(ContainerSnapshot),
});
export type HostSnapshot = z.infer<typeof HostSnapshot>;
