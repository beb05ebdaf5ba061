import { openFleetJetStream } from "../common/jetstream-resources.js";
import type { Logger } from "../common/logger.js";
import { connectNats, drainOrClose } from "../common/nats-connection.js";
import { Agent } from "./agent.js";
import type { AgentConfig } from "./config.js";
import { createDockerodeEngine } from "./dockerode-engine.js";
import { bindAgentNats } from "./nats-bindings.js";

/** A running agent process component, stopped by `stop()`. */
export interface RunningAgent {
  agent: Agent;
  stop(): Promise<void>;
}

/** Connects the agent to NATS and the local Docker engine, and starts it. */
export async function runAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  const nc = await connectNats({
    servers: config.natsUrl,
    name: `fleetheal-agent-${config.hostId}`,
    log,
  });
  try {
    const fjs = await openFleetJetStream(nc);
    const agent = new Agent({
      config,
      docker: createDockerodeEngine(),
      nats: bindAgentNats(nc, fjs, config.hostId, log),
      log,
    });
    await agent.start();
    return {
      agent,
      async stop() {
        await agent.stop();
        await drainOrClose(nc, log);
      },
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
}
