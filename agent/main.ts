import { join } from "node:path";
import type { Logger } from "../common/logger.js";
import { fileSecret } from "../common/message-ids.js";
import { runOnNats } from "../common/nats-connection.js";
import { Agent } from "./agent.js";
import { baselineFile, fileBaseline } from "./baseline-file.js";
import type { AgentConfig } from "./config.js";
import { createDockerodeEngine } from "./dockerode-engine.js";
import { bindAgentNats } from "./nats-bindings.js";

/** A running agent, stopped by `stop()`. */
export interface RunningAgent {
  agent: Agent;
  stop(): Promise<void>;
}

/** Connects the agent to NATS and the local Docker engine, and starts it. */
export function runAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  // autoheal variables that are ignored or overridden (agent/config.ts), said before the wait
  // for NATS so that they show even while the server is unreachable.
  for (const note of config.notes ?? []) log.warn(note);
  const name = `fleetheal-agent-${config.hostId}`;
  const nats = { servers: config.natsUrl, name, log, settings: config.nats };
  // No JetStream API: see bindAgentNats.
  return runOnNats(nats, async (nc) => {
    const agent = new Agent({
      config,
      docker: createDockerodeEngine(),
      nats: bindAgentNats(nc, config.hostId, log, fileSecret(msgIdSecretFile(config))),
      baseline: fileBaseline(baselineFile(config.dataDir, config.hostId), config.hostId),
      log,
    });
    await agent.start();
    return { agent, stop: () => agent.stop() };
  });
}

/** The agent's own secret for its events' message ids, kept beside its baseline. */
function msgIdSecretFile(config: AgentConfig): string {
  return join(config.dataDir, `agent-${config.hostId}.key`);
}
