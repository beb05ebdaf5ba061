import type { HostSnapshot, RestartCommand, RestartReply } from "../contracts/index.js";
import type { AckedPublish } from "./outbox.js";

/** Serves the agent's commands until closed. */
export interface CommandServer {
  close(): Promise<void>;
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
  /** Starts the agent's command service. */
  serveCommands(
    execute: (command: RestartCommand) => Promise<RestartReply>,
  ): Promise<CommandServer>;
}
