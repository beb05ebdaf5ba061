// Runs label probes for the containers of one host, with the semantics of Docker's HEALTHCHECK:
// a new run starts as `starting`; a success makes it `healthy` and resets the failing streak; a
// failure increments the streak and `retries` consecutive failures make it `unhealthy`, except
// that failures during the start period do not count while the container has not yet been healthy.

import type { Logger } from "../../common/logger.js";
import type { ProbeResultKind } from "../../contracts/index.js";
import type { ContainerDetails, DockerEngine } from "../docker-engine.js";
import type { ProbeAccess } from "./probe-access.js";
import { NOTHING_ALLOWED } from "./probe-allow.js";
import { type BlockLevel, whyNotProbed } from "./probe-blocker.js";
import { type ProbeResult, type ProbeTarget, probeResultKind, runProbe } from "./probe-runner.js";
import {
  MAX_PROBE_ERROR,
  MAX_PROBE_TARGET,
  PROBE_KINDS,
  PROBE_LABEL_PREFIX,
  type ProbeKind,
  type ProbeSpec,
  parseProbeLabels,
  shorten,
} from "./probe-spec.js";

export type ProbeHealth = "starting" | "healthy" | "unhealthy";

export interface ProbeView {
  /** `kind` is absent when the labels name no probe kind (only timing labels). */
  probe: { kind?: ProbeKind; target: string; error?: string };
  /** undefined when not probing (container not running, or labels invalid) */
  health?: ProbeHealth;
  failingStreak: number;
  lastOutput?: string;
}

export interface ProberOptions {
  docker: Pick<DockerEngine, "exec">;
  log: Logger;
  /** Which explicit hosts probes may reach (FLEETHEAL_PROBE_ALLOW); none when absent. */
  access?: ProbeAccess;
  /** health turned healthy or unhealthy (never called for "starting") */
  onTransition: (containerId: string, health: "healthy" | "unhealthy", view: ProbeView) => void;
  /** any change to a view (for snapshot refresh); may be called from within sync() */
  onChange?: (containerId: string) => void;
  now?: () => number;
}

export { HEALTHCHECK_WINS_ERROR } from "./probe-blocker.js";

interface Entry {
  id: string;
  details: ContainerDetails;
  /** The probe labels, as a stable string: a change means reconfigure. */
  configKey: string;
  spec?: ProbeSpec;
  kind: ProbeKind | undefined;
  target: string;
  /** Why the probe does not run (invalid labels, no address, Docker HEALTHCHECK). */
  error?: string;
  /** `startedAt` of the run the state below belongs to. */
  runKey: string | undefined;
  /** When that run started, by our clock (start period reference). */
  runStartMs: number;
  health?: ProbeHealth;
  failingStreak: number;
  lastOutput?: string;
  /** Whether the loop runs (running container with a usable probe). */
  active: boolean;
  timer?: ReturnType<typeof setTimeout>;
  inFlight?: { controller: AbortController; done: Promise<void> };
  /** Bumped whenever the loop restarts or stops, so late results of an old loop are dropped. */
  generation: number;
  /** The error last logged, so each distinct problem is logged once. */
  logged?: string;
  /**
   * A refusal found when the probe ran (its host resolved outside FLEETHEAL_PROBE_ALLOW), for
   * the labels it was found with: it holds until they change, so the host is not tried again.
   */
  refused?: { configKey: string; reason: string };
}

/** Counters for the operator. */
export interface ProberStats {
  /** Containers whose probe target was refused (FLEETHEAL_PROBE_ALLOW), once per labels. */
  refusedTargets: number;
  /**
   * Probe runs by how they ended; a run stopped before its end (halted, removed) is not counted,
   * and a refused target is counted in `refusedTargets`.
   */
  results: Record<Exclude<ProbeResultKind, "refused">, number>;
}

/** Label probes for every container of one host. See {@link ProberOptions}. */
export class Prober {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly access: ProbeAccess;
  private stopped = false;
  readonly stats: ProberStats = {
    refusedTargets: 0,
    results: { pass: 0, fail: 0, error: 0 },
  };

  constructor(private readonly options: ProberOptions) {
    this.now = options.now ?? Date.now;
    this.access = options.access ?? { allow: NOTHING_ALLOWED };
  }

  /** The probe results as the snapshot counts them (a refusal once per container and labels). */
  resultCounts(): Record<ProbeResultKind, number> {
    return { ...this.stats.results, refused: this.stats.refusedTargets };
  }

  /**
   * Called with fresh details after every Docker event/inspect of the container. Starts,
   * reconfigures (labels changed), resets (startedAt changed = new run → health "starting", start
   * period applies) or stops (not running, has a Docker HEALTHCHECK, or no probe labels) the loop.
   */
  sync(details: ContainerDetails): void {
    if (this.stopped) return;
    const parsed = parseProbeLabels(details.labels ?? {});
    if (parsed === undefined) {
      if (this.entries.has(details.id)) {
        this.remove(details.id);
        this.changed(details.id);
      }
      return;
    }
    const configKey = probeLabelsKey(details.labels);
    let entry = this.entries.get(details.id);
    const before = entry ? viewKey(entry) : undefined;
    if (!entry) {
      entry = {
        id: details.id,
        details,
        configKey: "",
        kind: undefined,
        target: "",
        runKey: undefined,
        runStartMs: 0,
        failingStreak: 0,
        active: false,
        generation: 0,
      };
      this.entries.set(details.id, entry);
    }
    entry.details = details;

    const reconfigured = entry.configKey !== configKey;
    if (reconfigured) {
      entry.configKey = configKey;
      entry.kind = parsed.ok ? parsed.spec.kind : (parsed.kind ?? firstKind(details.labels));
      entry.target = shorten(parsed.ok ? parsed.spec.target : parsed.target, MAX_PROBE_TARGET);
      entry.spec = parsed.ok ? parsed.spec : undefined;
    }

    const running = details.state === "running";
    const refusedBefore = entry.refused?.configKey === configKey ? entry.refused.reason : undefined;
    const blocked = whyNotProbed(parsed, details, this.access.allow, refusedBefore);
    entry.error = blocked === undefined ? undefined : shorten(blocked.error, MAX_PROBE_ERROR);
    if (blocked !== undefined) this.logOnce(entry, blocked.level);

    const newRun = entry.runKey !== details.startedAt;
    const shouldRun = running && entry.error === undefined && entry.spec !== undefined;
    if (!shouldRun) {
      this.halt(entry);
      if (entry.spec === undefined || entry.error !== undefined || newRun) this.forget(entry);
      if (newRun && running) this.beginRun(entry);
    } else if (newRun || entry.health === undefined) {
      // A new run, or probing (re)starts after the labels were unusable: Docker's `starting`.
      this.halt(entry);
      this.beginRun(entry);
      entry.health = "starting";
      entry.failingStreak = 0;
      entry.lastOutput = undefined;
      this.start(entry);
    } else if (reconfigured || !entry.active) {
      // Same run, a different probe (or resumed after a pause): keep the health, count afresh.
      this.halt(entry);
      if (reconfigured) entry.failingStreak = 0;
      this.start(entry);
    }
    if (viewKey(entry) !== before) this.changed(entry.id);
  }

  /** Forgets a container (destroyed): its loop stops and a probe in flight is aborted. */
  remove(containerId: string): void {
    const entry = this.entries.get(containerId);
    if (!entry) return;
    this.halt(entry);
    this.entries.delete(containerId);
  }

  view(containerId: string): ProbeView | undefined {
    const entry = this.entries.get(containerId);
    return entry ? toView(entry) : undefined;
  }

  /** Stops all loops and waits for probes in flight (they are aborted). */
  async stop(): Promise<void> {
    this.stopped = true;
    const inFlight: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      if (entry.inFlight) inFlight.push(entry.inFlight.done);
      this.halt(entry);
    }
    await Promise.allSettled(inFlight);
  }

  private beginRun(entry: Entry): void {
    entry.runKey = entry.details.startedAt;
    const started = entry.details.startedAt ? Date.parse(entry.details.startedAt) : Number.NaN;
    const now = this.now();
    // Docker's clock and ours are the same host's; a start "in the future" is clock skew.
    entry.runStartMs = Number.isFinite(started) && started <= now ? started : now;
  }

  /** Drops the health state (the view then shows no health). */
  private forget(entry: Entry): void {
    entry.health = undefined;
    entry.failingStreak = 0;
  }

  private start(entry: Entry): void {
    entry.active = true;
    this.schedule(entry);
  }

  private schedule(entry: Entry): void {
    const spec = entry.spec;
    if (!spec || !entry.active || this.stopped) return;
    const generation = entry.generation;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.generation !== generation) return;
      this.probe(entry, spec, generation);
    }, spec.intervalMs);
    entry.timer.unref?.();
  }

  private probe(entry: Entry, spec: ProbeSpec, generation: number): void {
    const controller = new AbortController();
    const startedMs = this.now();
    const target: ProbeTarget = {
      containerId: entry.id,
      ipAddresses: entry.details.ipAddresses ?? [],
      ...(entry.details.networkMode === undefined
        ? {}
        : { networkMode: entry.details.networkMode }),
    };
    const done = Promise.resolve()
      .then(() =>
        runProbe(spec, target, {
          docker: this.options.docker,
          access: this.access,
          signal: controller.signal,
        }),
      )
      .catch((error: unknown): ProbeResult => ({ ok: false, output: String(error), error: true }))
      .then((result) => {
        if (entry.inFlight?.controller === controller) entry.inFlight = undefined;
        if (entry.generation !== generation || this.entries.get(entry.id) !== entry) return;
        if (result.refused !== undefined) {
          this.refuse(entry, result.refused);
          return;
        }
        this.stats.results[probeResultKind(result)]++;
        this.record(entry, spec, result, startedMs);
        this.schedule(entry);
      })
      .catch((error: unknown) => {
        this.options.log.error(
          { err: error, containerId: entry.id },
          "label probe bookkeeping failed",
        );
      });
    entry.inFlight = { controller, done };
  }

  /**
   * The probe's host resolved to an address the allow list refuses: the probe stops, as for
   * unusable labels, and its health is forgotten (a refusal says nothing about the container).
   */
  private refuse(entry: Entry, reason: string): void {
    const before = viewKey(entry);
    entry.refused = { configKey: entry.configKey, reason };
    entry.error = shorten(reason, MAX_PROBE_ERROR);
    this.halt(entry);
    this.forget(entry);
    entry.lastOutput = undefined;
    this.logOnce(entry, "refused");
    if (viewKey(entry) !== before) this.changed(entry.id);
  }

  private record(entry: Entry, spec: ProbeSpec, result: ProbeResult, startedMs: number): void {
    const before = viewKey(entry);
    const previous = entry.health;
    entry.lastOutput = result.output;
    if (result.ok) {
      entry.failingStreak = 0;
      entry.health = "healthy";
    } else {
      const inStartPeriod =
        entry.health === "starting" && startedMs - entry.runStartMs < spec.startPeriodMs;
      if (!inStartPeriod) {
        entry.failingStreak++;
        if (entry.failingStreak >= spec.retries) entry.health = "unhealthy";
      }
    }
    this.options.log.debug(
      {
        containerId: entry.id,
        name: entry.details.name,
        kind: spec.kind,
        ok: result.ok,
        failingStreak: entry.failingStreak,
        output: result.output,
      },
      "label probe ran",
    );
    const health = entry.health;
    if (health !== previous && (health === "healthy" || health === "unhealthy")) {
      this.options.log.info(
        { containerId: entry.id, name: entry.details.name, health, output: result.output },
        "label probe health changed",
      );
      try {
        this.options.onTransition(entry.id, health, toView(entry));
      } catch (error) {
        this.options.log.error(
          { err: error, containerId: entry.id },
          "probe transition handler failed",
        );
      }
    }
    if (viewKey(entry) !== before) this.changed(entry.id);
  }

  /** Stops the loop and aborts a probe in flight; its result will be ignored. */
  private halt(entry: Entry): void {
    entry.active = false;
    entry.generation++;
    if (entry.timer !== undefined) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    entry.inFlight?.controller.abort();
  }

  private logOnce(entry: Entry, level: BlockLevel): void {
    const key = `${entry.configKey}\n${entry.error}`;
    if (entry.logged === key) return;
    entry.logged = key;
    const fields = {
      containerId: entry.id,
      name: entry.details.name,
      kind: entry.kind,
      error: entry.error,
    };
    if (level === "refused") {
      // Counted with the log line: once per container and labels, however often it is seen.
      this.stats.refusedTargets++;
      this.options.log.warn(
        { ...fields, refusedTargets: this.stats.refusedTargets },
        `probe target refused on ${entry.details.name}: ${entry.error}`,
      );
    } else if (level === "warn") {
      this.options.log.warn(
        fields,
        `probe labels ignored on ${entry.details.name}: ${entry.error}`,
      );
    } else {
      this.options.log.error(
        fields,
        `invalid probe labels on ${entry.details.name}: ${entry.error}`,
      );
    }
  }

  private changed(containerId: string): void {
    try {
      this.options.onChange?.(containerId);
    } catch (error) {
      this.options.log.error({ err: error, containerId }, "probe change handler failed");
    }
  }
}

function toView(entry: Entry): ProbeView {
  const probing = entry.active && entry.error === undefined;
  return {
    probe: {
      ...(entry.kind === undefined ? {} : { kind: entry.kind }),
      target: entry.target,
      ...(entry.error === undefined ? {} : { error: entry.error }),
    },
    ...(probing && entry.health !== undefined ? { health: entry.health } : {}),
    failingStreak: probing ? entry.failingStreak : 0,
    ...(entry.lastOutput === undefined ? {} : { lastOutput: entry.lastOutput }),
  };
}

function viewKey(entry: Entry): string {
  return JSON.stringify(toView(entry));
}

function probeLabelsKey(labels: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => k.startsWith(PROBE_LABEL_PREFIX))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** The kind shown for labels that do not parse: the first kind label present, if any. */
function firstKind(labels: Record<string, string>): ProbeKind | undefined {
  return PROBE_KINDS.find((k) => labels[PROBE_LABEL_PREFIX + k] !== undefined);
}
