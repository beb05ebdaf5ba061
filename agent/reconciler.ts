import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContainerAction, HealthStatus, HostSnapshot, Labels } from "../contracts/index.js";
import type { ContainerDetails, DockerEngine } from "./docker-engine.js";
import type { HostState } from "./host-state.js";
import { ResyncRotation } from "./resync.js";

/**
 * What subscribers were last told about a container, and who it was: reconciliation reports the
 * differences, and can still name a container that has vanished.
 */
export interface Reported {
  running: boolean;
  health: HealthStatus;
  /** The run subscribers know of; a different StartedAt now means a restart nobody reported. */
  startedAt: string | undefined;
  name: string;
  image: string;
  imageId: string | undefined;
  labels: Labels;
  /**
   * Since when subscribers know the container unhealthy in this run: the time of the `unhealthy`
   * event that told them (Docker's, for Docker's events). Undefined while it is not unhealthy,
   * and when the baseline came from the previous run's snapshot, which does not say.
   */
  unhealthySince?: string;
}

/** What a forwarded event said about its container. */
export type ReportedIdentity = Pick<
  Reported,
  "name" | "image" | "imageId" | "labels" | "startedAt"
>;

/**
 * Inspects a reconcile has in flight at once. A whole host at once would keep every response
 * alive together, so V8 would promote them all and reclaim them only with full collections
 * (docs/AGENT.md, "Memory"); Docker answers them no sooner all at once.
 */
const RECONCILE_INSPECTS = 8;

/** What the reconciler needs from the rest of the agent. */
export interface ReconcilerOptions {
  docker: Pick<DockerEngine, "version" | "listContainerIds">;
  /** The host state, which the reconcile rebuilds from Docker's list. */
  state: HostState;
  /** Re-inspects one container into the state (coalesced with an inspect in progress). */
  refresh(containerId: string): Promise<void>;
  /** Whether Docker has an event for this container still waiting to be forwarded. */
  hasQueuedEventFor(containerId: string): boolean;
  /**
   * Publishes a transition Docker did not report (`reconcile`), or re-asserts that a container is
   * still unhealthy (`resync`), stamped with the agent's clock.
   */
  synthesize(containerId: string, action: ContainerAction, source: "reconcile" | "resync"): void;
  /** The container's health as the agent judges it: Docker's, or its label probe's. */
  healthOf(details: ContainerDetails): HealthStatus;
  /** Whether the last inspect of the container worked, so that its details are current. */
  current(containerId: string): boolean;
  /** How many re-assertions this reconcile may publish (see resyncBudget). */
  resyncBudget(): number;
  /** A container that is gone from the host. */
  forget(containerId: string): void;
  /** The host state changed: a snapshot is due. */
  changed(): void;
  /** A reconcile begins (it is counted). */
  started(): void;
  /** A reconcile has ended, whether it worked or not: the snapshot is published now. */
  finished(): void;
  log: Logger;
  now: () => Date;
}

/**
 * Keeps what subscribers were last told about each container (the baseline), and reconciles it
 * with Docker: a full list and inspect of the host, then a synthetic event for every transition
 * nobody reported (a container that became unhealthy, started, died or vanished while nobody was
 * listening), and last a `resync` re-assertion for every opted-in container that is still
 * unhealthy (healing is level-triggered: docs/AGENT.md, "Level-triggered healing"). Never two
 * reconciles at once.
 */
export class Reconciler {
  /** Per container, what subscribers were last told; empty until a baseline exists. */
  private readonly reported = new Map<string, Reported>();
  /** When the baseline was taken (the previous run's last snapshot), if there is one. */
  private baselineAt: number | undefined;
  /** Containers with a Docker event since the current reconcile began. */
  private readonly touched = new Set<string>();
  private running: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  /** Containers a synthetic `unhealthy` was published for in the reconcile in progress. */
  private readonly toldUnhealthy = new Set<string>();
  private readonly rotation = new ResyncRotation();

  constructor(private readonly options: ReconcilerOptions) {}

  /** Takes the previous run's last snapshot as what subscribers were last told. */
  resume(previous: HostSnapshot): void {
    this.baselineAt = Date.parse(previous.at);
    for (const c of previous.containers) {
      this.reported.set(c.id, {
        running: isRunning(c.state),
        health: c.health,
        startedAt: c.startedAt,
        name: c.name,
        image: c.image,
        imageId: c.imageId,
        labels: c.labels,
      });
    }
  }

  /** What subscribers were last told about a container, if anything. */
  told(containerId: string): Reported | undefined {
    return this.reported.get(containerId);
  }

  /** Docker has just reported on this container: the reconcile in progress leaves it alone. */
  touch(containerId: string): void {
    this.touched.add(containerId);
  }

  /**
   * Keeps the baseline in step with what was just forwarded. `identity` is what the event said
   * about the container; a start begins a run whose StartedAt the next inspect fills in.
   * `unhealthySince` is what an `unhealthy` event said (see {@link unhealthySince}).
   */
  note(
    containerId: string,
    action: ContainerAction,
    identity: ReportedIdentity,
    unhealthySince?: string,
  ): void {
    const current = this.reported.get(containerId);
    const base = {
      ...identity,
      running: current?.running ?? false,
      health: current?.health ?? "none",
    };
    switch (action) {
      case "start":
        this.reported.set(containerId, { ...base, running: true, health: "starting" });
        return;
      case "restart":
        this.reported.set(containerId, { ...base, running: true });
        return;
      case "die":
      case "stop":
        this.reported.set(containerId, { ...base, running: false, health: "none" });
        return;
      case "destroy":
        this.reported.delete(containerId);
        return;
      case "unhealthy":
        this.reported.set(containerId, {
          ...base,
          running: true,
          health: action,
          ...(unhealthySince ? { unhealthySince } : {}),
        });
        return;
      case "healthy":
      case "starting":
        this.reported.set(containerId, { ...base, running: true, health: action });
        return;
      default:
        if (!current) this.reported.set(containerId, base);
        return;
    }
  }

  /**
   * Since when an `unhealthy` event at `at` (ISO) says the container is unhealthy: while
   * subscribers already know it unhealthy in this run, since they were first told (unknown after
   * an agent restart: then Docker's, a reconcile's or a probe's own transition is the start, and a
   * re-assertion says nothing); otherwise the event's own time.
   */
  unhealthySince(containerId: string, at: string, resync: boolean): string | undefined {
    const told = this.reported.get(containerId);
    if (told?.running && told.health === "unhealthy") {
      return told.unhealthySince ?? (resync ? undefined : at);
    }
    return resync ? undefined : at;
  }

  /** A Docker start event cannot carry the new run's StartedAt; its first inspect can. */
  inspected(details: ContainerDetails): void {
    const told = this.reported.get(details.id);
    if (told?.running && told.startedAt === undefined) told.startedAt = details.startedAt;
  }

  /**
   * Reconciles now, or once more after the reconcile in progress (never two at once). The
   * promise settles when a reconcile that started after this call has finished.
   */
  request(): Promise<void> {
    if (this.running) {
      this.again ??= this.running.then(() => {
        this.again = undefined;
        return this.request();
      });
      return this.again;
    }
    this.running = this.reconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Settles when the reconcile in progress, if any, has finished. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Rebuilds the host state from a full list and inspect, and reports what nobody heard of. */
  private async reconcile(): Promise<void> {
    const { docker, state, log } = this.options;
    this.options.started();
    this.touched.clear();
    this.toldUnhealthy.clear();
    try {
      const version = await docker.version();
      if (state.setDockerUp(version)) this.options.changed();
      const ids = await docker.listContainerIds();
      for (const id of state.retainOnly(new Set(ids))) this.options.forget(id);
      let next = 0;
      const inspectRest = async () => {
        for (let id = ids[next++]; id !== undefined; id = ids[next++]) {
          await this.options.refresh(id);
        }
      };
      await Promise.all(Array.from({ length: RECONCILE_INSPECTS }, inspectRest));
      this.reportMissedTransitions(new Set(ids));
      log.debug({ containers: ids.length }, "reconciled with Docker");
    } catch (error) {
      log.warn({ err: describeError(error) }, "reconcile failed");
    }
    this.options.finished();
  }

  private reportMissedTransitions(ids: ReadonlySet<string>): void {
    for (const id of [...this.reported.keys()]) {
      if (!ids.has(id)) this.options.synthesize(id, "destroy", "reconcile");
    }
    for (const id of ids) {
      const details = this.options.state.get(id);
      if (details) this.reportContainer(details);
    }
    this.baselineAt ??= this.options.now().getTime();
    this.resync(ids);
  }

  /**
   * Re-asserts, for every opted-in running container that the agent judges unhealthy and that
   * nothing else reports on right now, that it is still unhealthy. The handlers decide each one
   * as a fresh trigger, so a trigger that was lost, skipped as stale or acted on without success
   * is decided again every reconcile. Bounded by the outbox's room (resyncBudget), in turns.
   */
  private resync(ids: ReadonlySet<string>): void {
    const { state } = this.options;
    const due: string[] = [];
    for (const id of ids) {
      const details = state.get(id);
      if (!details || !this.dueForResync(details)) continue;
      due.push(id);
    }
    const chosen = this.rotation.choose(due, this.options.resyncBudget());
    for (const id of chosen) this.options.synthesize(id, "unhealthy", "resync");
    if (chosen.length < due.length) {
      this.options.log.info(
        { due: due.length, reasserted: chosen.length },
        "more unhealthy containers than one resync re-asserts; the rest follow in later reconciles",
      );
    }
  }

  private dueForResync(details: ContainerDetails): boolean {
    const id = details.id;
    return (
      // Paused containers are not healed; stopped ones are not unhealthy.
      details.state === "running" &&
      this.options.state.optedIn(details) &&
      this.options.current(id) &&
      this.options.healthOf(details) === "unhealthy" &&
      // This reconcile said so already, or Docker is reporting on it and will say what it is.
      !this.toldUnhealthy.has(id) &&
      !this.touched.has(id) &&
      !this.options.hasQueuedEventFor(id)
    );
  }

  private reportContainer(details: ContainerDetails): void {
    // Docker is reporting on this container right now: its own events will tell subscribers,
    // and a synthetic one could only duplicate them.
    if (this.touched.has(details.id) || this.options.hasQueuedEventFor(details.id)) return;
    const running = isRunning(details.state);
    const told = this.reported.get(details.id);
    const health = details.health;
    const synthesize = (action: ContainerAction) => {
      if (action === "unhealthy") this.toldUnhealthy.add(details.id);
      this.options.synthesize(details.id, action, "reconcile");
    };
    if (!told) {
      // Never reported: it appeared while nobody was listening (or this is the first run).
      const startedSinceBaseline =
        this.baselineAt !== undefined &&
        details.startedAt !== undefined &&
        Date.parse(details.startedAt) > this.baselineAt;
      if (running && startedSinceBaseline) synthesize("start");
      if (running && health === "unhealthy") synthesize("unhealthy");
      // The unhealthy event just published says since when; the rest comes from the inspect.
      const since = this.reported.get(details.id)?.unhealthySince;
      this.reported.set(details.id, {
        running,
        health: running ? health : "none",
        startedAt: details.startedAt,
        name: details.name,
        image: details.image,
        imageId: details.imageId,
        labels: details.labels,
        ...(running && health === "unhealthy" && since ? { unhealthySince: since } : {}),
      });
      return;
    }
    // Restarted while nobody was listening: a new run, whose health starts afresh.
    const newRun =
      running &&
      told.running &&
      told.startedAt !== undefined &&
      told.startedAt !== details.startedAt;
    if (running && (!told.running || newRun)) synthesize("start");
    if (!running && told.running) synthesize("die");
    const toldHealth = newRun || !told.running ? "starting" : told.health;
    if (running && health !== toldHealth && (health === "healthy" || health === "unhealthy")) {
      synthesize(health);
    }
    const after = this.reported.get(details.id);
    if (after) after.startedAt = details.startedAt;
  }
}

function isRunning(state: string): boolean {
  return state === "running" || state === "paused";
}
