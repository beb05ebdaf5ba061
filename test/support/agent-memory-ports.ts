// The agent's ports in memory (agent/agent-ports.ts, agent/docker-engine.ts), for the unit tests
// of the agent and of its parts: a Docker engine the test drives, and a NATS side that records.

import { PassThrough } from "node:stream";
import type { AgentNats, CommandHandlers, CommandServer } from "../../agent/agent-ports.js";
import type {
  ContainerDetails,
  DockerEngine,
  ExecResult,
  RecreateOptions,
  RecreateResult,
} from "../../agent/docker-engine.js";
import type { OutboxMessage } from "../../agent/outbox.js";
import { ContainerEvent, decode, type HostSnapshot } from "../../contracts/index.js";

/** One event stream the agent opened. */
interface Opened {
  since: string | undefined;
  until: string | undefined;
  signal: AbortSignal;
  stream: PassThrough;
}

/**
 * An in-memory Docker engine: containers the test defines, event streams the test writes to
 * (replays end by themselves after `replayLines`), and every call recorded.
 */
export class MemoryDocker implements DockerEngine {
  readonly containers = new Map<string, ContainerDetails>();
  readonly opened: Opened[] = [];
  readonly calls: string[] = [];
  readonly restarts: { id: string; stopTimeoutSeconds: number }[] = [];
  readonly stops: { id: string; stopTimeoutSeconds: number }[] = [];
  readonly pulls: { reference: string; timeoutMs: number }[] = [];
  readonly recreates: { id: string; options: RecreateOptions; newContainerId: string }[] = [];
  /** Thrown by the next pulls and recreates, when set. */
  pullError: Error | undefined;
  recreateError: Error | undefined;
  /** When set, recreates wait for it, so that a test can act while one runs. */
  recreateGate: Promise<void> | undefined;
  /** Lines a replay (a stream with `until`) returns before it ends. */
  replayLines: string[] = [];
  execResult: ExecResult = { exitCode: 0, output: "ok" };
  private waiters: (() => void)[] = [];

  /** `clockValue`: Docker's clock, as `<seconds>.<nanoseconds>`. */
  constructor(public clockValue = "1795809600.000000000") {}

  add(...all: ContainerDetails[]): void {
    for (const d of all) this.containers.set(d.id, d);
  }

  async openEventStream(options: {
    since?: string;
    until?: string;
    signal: AbortSignal;
  }): Promise<NodeJS.ReadableStream> {
    this.calls.push("events");
    const stream = new PassThrough();
    const { signal } = options;
    const abort = () =>
      stream.destroy(Object.assign(new Error("The operation was aborted"), { name: "AbortError" }));
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
    this.opened.push({ since: options.since, until: options.until, signal, stream });
    for (const wake of this.waiters.splice(0)) wake();
    if (options.until !== undefined) stream.end(this.replayLines.join(""));
    return stream;
  }

  /** The live stream opened as number `index` (0-based) among live streams. */
  async live(index = 0): Promise<PassThrough> {
    for (;;) {
      const found = this.opened.filter((o) => o.until === undefined)[index];
      if (found) return found.stream;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async clock(): Promise<string> {
    this.calls.push("clock");
    return this.clockValue;
  }
  async listContainerIds(): Promise<string[]> {
    this.calls.push("list");
    return [...this.containers.keys()];
  }
  async inspect(id: string): Promise<ContainerDetails | undefined> {
    this.calls.push(`inspect ${id.slice(0, 4)}`);
    for (const c of this.containers.values()) if (c.id.startsWith(id)) return structuredClone(c);
    return undefined;
  }
  async restart(id: string, stopTimeoutSeconds: number): Promise<void> {
    this.restarts.push({ id, stopTimeoutSeconds });
  }
  async stop(id: string, stopTimeoutSeconds: number): Promise<void> {
    this.stops.push({ id, stopTimeoutSeconds });
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: "exited", health: "none", exitCode: 0 });
  }
  async pull(reference: string, timeoutMs: number): Promise<void> {
    this.pulls.push({ reference, timeoutMs });
    if (this.pullError) throw this.pullError;
  }
  /** Replaces the container by a running copy with a new id (the old id reversed). */
  async recreate(id: string, options: RecreateOptions): Promise<RecreateResult> {
    await this.recreateGate;
    if (this.recreateError) throw this.recreateError;
    const old = this.containers.get(id);
    if (!old) throw new Error(`no such container: ${id}`);
    const newContainerId = [...id].reverse().join("");
    this.containers.delete(id);
    this.containers.set(newContainerId, {
      ...old,
      id: newContainerId,
      state: "running",
      health: "starting",
      ...(options.networkParent === undefined
        ? {}
        : { networkMode: `container:${options.networkParent}` }),
    });
    this.recreates.push({ id, options, newContainerId });
    return { newContainerId };
  }
  async exec(id: string): Promise<ExecResult> {
    this.calls.push(`exec ${id.slice(0, 4)}`);
    return this.execResult;
  }
  async version(): Promise<string> {
    this.calls.push("version");
    return "24.0.7";
  }
}

/** An in-memory NATS side: records what the agent publishes and serves. */
export class MemoryNats implements AgentNats {
  readonly messages: OutboxMessage[] = [];
  readonly snapshots: HostSnapshot[] = [];
  handlers: CommandHandlers | undefined;
  closed = false;
  private readonly reconnectListeners: (() => void)[] = [];

  readonly publishEvent = async (message: OutboxMessage): Promise<void> => {
    this.messages.push(message);
  };
  async publishSnapshot(snapshot: HostSnapshot): Promise<void> {
    this.snapshots.push(snapshot);
  }
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }
  async serveCommands(handlers: CommandHandlers): Promise<CommandServer> {
    this.handlers = handlers;
    return {
      close: async () => {
        this.closed = true;
      },
    };
  }

  fireReconnect(): void {
    for (const listener of this.reconnectListeners) listener();
  }

  /** Every published event, decoded and checked against the contract. */
  events(): ContainerEvent[] {
    return this.messages.map((m) => {
      const decoded = decode(ContainerEvent, m.payload);
      if (!decoded.ok) throw decoded.error;
      return decoded.value;
    });
  }

  command(): CommandHandlers {
    if (!this.handlers) throw new Error("the agent serves no commands");
    return this.handlers;
  }
}
