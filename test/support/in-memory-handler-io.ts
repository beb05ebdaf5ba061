import { pino } from "pino";
import type { ContainerCommandDraft } from "../../common/agent-commands.js";
import {
  type CommandReply,
  DEFAULT_HEAL_POLICY,
  decode,
  encode,
  type HostSnapshot,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  RecreateCommand,
  RemediationRecord,
  RestartCommand,
  STOP_COMMAND_TYPE,
  StopCommand,
} from "../../contracts/index.js";
import type { CommandResult, StoreName, Stores } from "../../handlers/decisions.js";
import {
  DecisionRunner,
  type DecisionRunnerOptions,
} from "../../handlers/runtime/decision-runner.js";
import type {
  DeadLetter,
  HandlerIo,
  LeaseBuckets,
  RecordStored,
  StoredValue,
} from "../../handlers/runtime/handler-io.js";
import { STORE_SCHEMAS } from "../../handlers/runtime/typed-stores.js";
import { commandReply } from "./fixtures.js";
import { InMemoryBucket } from "./in-memory-bucket.js";

/** The storm guard's buckets forget a slot after this, as `fleetheal_inflight` and `_rate` do. */
const LEASE_TTL_MS = 60_000;

/** Commands as a handler decides them: the runtime stamps their lifetime when it sends them. */
const DRAFT_SCHEMAS = {
  [RESTART_COMMAND_TYPE]: RestartCommand.omit({ issuedAt: true, expiresAt: true }),
  [STOP_COMMAND_TYPE]: StopCommand.omit({ issuedAt: true, expiresAt: true }),
  [RECREATE_COMMAND_TYPE]: RecreateCommand.omit({ issuedAt: true, expiresAt: true }),
};

/** How the in-memory agent answers a command. */
export type InMemoryAgent = (
  command: ContainerCommandDraft,
) => CommandResult | Promise<CommandResult>;

/** The agent's reply to `command` when it restarted the container, changed by `patch`. */
export function restartedReply(
  command: ContainerCommandDraft,
  patch: Partial<CommandReply> = {},
): CommandResult {
  return {
    ok: true,
    reply: commandReply({
      commandId: command.commandId,
      host: command.host,
      containerId: command.containerId,
      ...patch,
    }),
  };
}

/**
 * The handler runtime's {@link HandlerIo} in memory, for tests that run the real DecisionRunner
 * (and delivery.ts): the stores, the hosts and the storm guard's slots are
 * {@link InMemoryBucket}s with JetStream's compare-and-set rules, so a claim can be lost; the
 * agent is a function; records, commands and dead letters are kept in order. Like their
 * receivers on NATS, it refuses records that break their contract (the publish fails) and
 * commands that break theirs (the agent answers 400, which the runtime reads as a bad reply).
 */
export class InMemoryHandlerIo implements HandlerIo {
  readonly buckets = {
    ledger: new InMemoryBucket(),
    monitored: new InMemoryBucket(),
    breakers: new InMemoryBucket(),
    hosts: new InMemoryBucket(),
    inflight: new InMemoryBucket({ ttlMs: LEASE_TTL_MS }),
    rate: new InMemoryBucket({ ttlMs: LEASE_TTL_MS }),
  };
  /** Records as published, in order. */
  readonly records: RemediationRecord[] = [];
  private readonly recordIds = new Set<string>();
  /** Restarts as sent, in order, with how long the runtime waited for each. */
  readonly commands: { command: ContainerCommandDraft; timeoutMs: number }[] = [];
  readonly deadLetters: DeadLetter[] = [];
  /** What went out, in order: `publish <phase>`, `request <command id>`, `dead-letter <seq>`. */
  readonly sent: string[] = [];
  /** Answers every restart; restarts the container unless a test says otherwise. */
  agent: InMemoryAgent = (command) => restartedReply(command);

  store(name: StoreName): InMemoryBucket {
    return this.buckets[name];
  }

  hostSnapshot(host: string): Promise<StoredValue | undefined> {
    return this.buckets.hosts.get(host);
  }

  listHostKeys = async () => {
    const keys = this.buckets.hosts.keys();
    let stopped = false;
    return {
      stop: () => {
        stopped = true;
      },
      async *[Symbol.asyncIterator]() {
        for (const key of keys) {
          if (stopped) return;
          yield key;
        }
      },
    };
  };

  async leaseBuckets(): Promise<LeaseBuckets> {
    return { inflight: this.buckets.inflight, rate: this.buckets.rate };
  }

  publishRecord(record: RemediationRecord): Promise<RecordStored> {
    this.sent.push(`publish ${record.phase}`);
    try {
      this.records.push(RemediationRecord.parse(record));
      // As JetStream's duplicate window: a record id stored before is a duplicate.
      const duplicate = this.recordIds.has(record.id);
      this.recordIds.add(record.id);
      return Promise.resolve({ duplicate });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async sendCommand(command: ContainerCommandDraft, timeoutMs: number): Promise<CommandResult> {
    this.sent.push(`request ${command.commandId}`);
    this.commands.push({ command, timeoutMs });
    const valid = DRAFT_SCHEMAS[command.type].safeParse(command);
    if (!valid.success) {
      return { ok: false, code: "bad-reply", message: `agent error: ${valid.error.message}` };
    }
    return this.agent(command);
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    this.sent.push(`dead-letter ${letter.streamSeq}`);
    this.deadLetters.push(letter);
  }

  /** Stores `value` under `key` at once, as another replica would; its revision. */
  put<S extends StoreName>(store: S, key: string, value: Stores[S]): number {
    return this.buckets[store].put(key, encode(STORE_SCHEMAS[store].parse(value)));
  }

  /** What `store` holds under `key` now, if anything. */
  value<S extends StoreName>(store: S, key: string): Stores[S] | undefined {
    const entry = this.buckets[store].entries.get(key);
    if (entry?.operation !== "PUT") return undefined;
    const decoded = decode(STORE_SCHEMAS[store], entry.value);
    if (!decoded.ok) throw decoded.error;
    return decoded.value as Stores[S];
  }

  /** Stores a host's snapshot as its agent would; its revision. */
  putHostSnapshot(snapshot: HostSnapshot): number {
    return this.buckets.hosts.put(snapshot.host, encode(snapshot));
  }

  /** The records' `phase:code`, and forgets them. */
  takeRecords(): string[] {
    return this.records.splice(0).map((r) => `${r.phase}:${r.code}`);
  }
}

/** A DecisionRunner on `io`, logging nothing, with the default policy unless told otherwise. */
export function runnerOn(
  io: HandlerIo,
  options: Partial<DecisionRunnerOptions> = {},
): DecisionRunner {
  return new DecisionRunner(io, {
    log: pino({ level: "silent" }),
    commandTimeoutMs: 1_000,
    policy: () => DEFAULT_HEAL_POLICY,
    ...options,
  });
}
