import type {
  CommandReply,
  CommandVerb,
  ContainerSnapshot,
  HostSnapshot,
} from "../contracts/index.js";
import type { CommandRefusal, CommandSignature } from "./command-auth.js";
import type { ContainerCommand } from "./command-executor.js";
import type { AckedPublish } from "./outbox.js";

/** Serves the agent's commands until closed. */
export interface CommandServer {
  close(): Promise<void>;
}

/** What the agent's command service does for each verb. */
export interface CommandHandlers {
  /**
   * Whether a restart, stop or recreate may run at all: its signature over the payload bytes as received,
   * and its lifetime. Undefined when it may; a refusal is counted here.
   */
  authorise(
    command: ContainerCommand,
    request: { payload: Uint8Array; signature: CommandSignature },
  ): CommandRefusal | undefined;
  /** Counts a request rejected as malformed (answered 400). */
  rejected(verb: CommandVerb, reason: string): void;
  /** The requests to `verb` rejected as malformed so far, and the last reason. */
  rejections(verb: CommandVerb): { rejected: number; last?: string };
  /** restart, stop and recreate, once authorised. */
  execute(command: ContainerCommand): Promise<CommandReply>;
  /** One container, freshly inspected; undefined if it does not exist. */
  inspect(containerId: string): Promise<ContainerSnapshot | undefined>;
  /** The host snapshot now. */
  snapshot(): HostSnapshot;
}

/**
 * Everything the agent needs from NATS. The real implementation is in nats-bindings.ts; the
 * agent's logic sees only this.
 */
export interface AgentNats {
  /** JetStream publish that resolves on the server's ack. */
  publishEvent: AckedPublish;
  /** Stores the snapshot in KV and announces it on the snapshot subject. */
  publishSnapshot(snapshot: HostSnapshot): Promise<void>;
  /** Calls `listener` after every reconnect to NATS. */
  onReconnect(listener: () => void): void;
  /** Starts the agent's command service. */
  serveCommands(handlers: CommandHandlers): Promise<CommandServer>;
}

/**
 * Where the agent keeps the last snapshot it published, for its next run: the baseline against
 * which that run finds the transitions nobody reported, and its replay point. It is local to the
 * host (agent/baseline-file.ts), because the agent may not read anything back from the fleet's
 * JetStream: a read that echoes stored bytes to a reply subject is a way out of a host's account.
 */
export interface AgentBaseline {
  /** The last snapshot saved by a previous run, if there is a readable one. */
  load(): Promise<HostSnapshot | undefined>;
  /** Keeps `snapshot`, which subscribers have now been told. */
  save(snapshot: HostSnapshot): Promise<void>;
}
