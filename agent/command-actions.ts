import type { ContainerCommand } from "../common/agent-commands.js";
import { describeError } from "../common/errors.js";
import {
  type CommandOutcome,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
} from "../contracts/index.js";
import { type ContainerDetails, type DockerEngine, RecreateError } from "./docker-engine.js";

/*
 * The Docker work of each container command, once the executor's guards have let it through
 * (command-executor.ts): restart, stop, and recreate with its own checks and its optional pull.
 */

/** What a command did, for its reply. */
export interface ActionResult {
  outcome: CommandOutcome;
  code: string;
  message: string;
  newContainerId?: string;
}

/** How one command is carried out. */
export interface ActionContext {
  docker: DockerEngine;
  /** The container's full id. */
  id: string;
  details: ContainerDetails;
  stopTimeoutSeconds: number;
  /** How long a pull may take: what is left of the command's lifetime. */
  pullTimeoutMs: number;
}

/**
 * A refusal that depends on the verb, checked with the executor's other guards before anything
 * is done: a `networkParent` is for a container that shares another's network namespace only.
 */
export function verbRefusal(
  command: ContainerCommand,
  details: ContainerDetails,
): ActionResult | undefined {
  if (command.type !== RECREATE_COMMAND_TYPE || command.networkParent === undefined) {
    return undefined;
  }
  if (details.networkMode?.startsWith("container:")) return undefined;
  return {
    outcome: "refused",
    code: "not-network-child",
    message: `networkParent is only for a container with network mode container:<id>; this one has ${details.networkMode ?? "none"}`,
  };
}

/** Restarts, stops or recreates the container; Docker's errors become a `failed` result. */
export async function performAction(
  command: ContainerCommand,
  context: ActionContext,
): Promise<ActionResult> {
  const { docker, id, stopTimeoutSeconds: timeout } = context;
  if (command.type === RECREATE_COMMAND_TYPE) return recreate(command, context);
  const restart = command.type === RESTART_COMMAND_TYPE;
  try {
    if (restart) {
      await docker.restart(id, timeout);
      return {
        outcome: "restarted",
        code: "restarted",
        message: `restarted (stop timeout ${timeout}s)`,
      };
    }
    await docker.stop(id, timeout);
    return { outcome: "stopped", code: "stopped", message: `stopped (stop timeout ${timeout}s)` };
  } catch (error) {
    const verb = restart ? "restart" : "stop";
    return {
      outcome: "failed",
      code: "docker-error",
      message: `${verb} failed: ${describeError(error)}`,
    };
  }
}

async function recreate(
  command: Extract<ContainerCommand, { type: typeof RECREATE_COMMAND_TYPE }>,
  { docker, id, details, stopTimeoutSeconds, pullTimeoutMs }: ActionContext,
): Promise<ActionResult> {
  if (command.pull) {
    try {
      await docker.pull(details.image, pullTimeoutMs);
    } catch (error) {
      return {
        outcome: "failed",
        code: "pull-failed",
        message: `pull of ${details.image} failed, nothing changed: ${describeError(error)}`,
      };
    }
  }
  try {
    const result = await docker.recreate(id, {
      stopTimeoutSeconds,
      ...(command.networkParent === undefined ? {} : { networkParent: command.networkParent }),
    });
    const pulled = command.pull ? `, ${details.image} pulled` : "";
    return {
      outcome: "recreated",
      code: "recreated",
      message: `recreated as ${result.newContainerId.slice(0, 12)} (stop timeout ${stopTimeoutSeconds}s${pulled})${
        result.leftover ? `; the old container could not be removed: ${result.leftover}` : ""
      }`,
      newContainerId: result.newContainerId,
    };
  } catch (error) {
    if (error instanceof RecreateError && error.refusal) {
      return { outcome: "refused", code: error.refusal, message: error.message };
    }
    return {
      outcome: "failed",
      code: "docker-error",
      message: `recreate failed: ${describeError(error)}`,
    };
  }
}
