import type { Logger } from "../common/logger.js";
import type { HostSnapshot } from "../contracts/index.js";
import type { CommandHandlers } from "./agent-ports.js";
import type { CommandGate } from "./command-auth.js";
import type { CommandExecutor } from "./command-executor.js";
import type { DockerEngine } from "./docker-engine.js";
import type { HostState } from "./host-state.js";
import type { ProbeView } from "./probes/prober.js";

/** What the agent's command service is answered from. */
export interface CommandHandlerParts {
  /** Who may restart, stop and recreate, and what was refused. */
  gate: CommandGate;
  executor: Pick<CommandExecutor, "execute">;
  docker: Pick<DockerEngine, "inspect">;
  state: Pick<HostState, "containerSnapshot">;
  /** The label probe's view of a container, for one without a Docker healthcheck. */
  probe(containerId: string): ProbeView | undefined;
  snapshot(): HostSnapshot;
  log: Logger;
}

/**
 * The agent's answers to each verb of its command service: restart, stop and recreate through
 * the gate and the executor, with one log line per executed command; inspect and snapshot from
 * the state.
 */
export function commandHandlers(parts: CommandHandlerParts): CommandHandlers {
  const { gate, executor, docker, state, log } = parts;
  return {
    authorise: (command, request) => gate.authorise(command, request),
    rejected: (verb, reason) => gate.rejected(verb, reason),
    rejections: (verb) => gate.rejections(verb),
    execute: async (command) => {
      const reply = await executor.execute(command);
      log.info(
        {
          verb: reply.verb,
          commandId: command.commandId,
          containerId: command.containerId,
          requestedBy: command.requestedBy,
          reason: command.reason,
          outcome: reply.outcome,
          code: reply.code,
          duplicate: reply.duplicate,
          durationMs: reply.durationMs,
          ...(reply.newContainerId ? { newContainerId: reply.newContainerId } : {}),
        },
        `${reply.verb} command: ${reply.outcome} (${reply.code})`,
      );
      return reply;
    },
    inspect: async (id) => {
      const details = await docker.inspect(id);
      return details && state.containerSnapshot(details, parts.probe(details.id));
    },
    snapshot: () => parts.snapshot(),
  };
}
