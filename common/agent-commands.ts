import { type MsgHdrs, type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { ServiceError } from "@nats-io/services";
import { z } from "zod";
import {
  COMMAND_SIGNATURE_HEADERS,
  CommandReply,
  type ContainerCommandVerb,
  commandSubject,
  decode,
  encode,
  MAX_COMMAND_LIFETIME_MS,
  RECREATE_COMMAND_TYPE,
  RESTART_COMMAND_TYPE,
  type RecreateCommand,
  type RestartCommand,
  type StopCommand,
} from "../contracts/index.js";
import { type CommandSigningKey, loadCommandSigningKey } from "./command-signing.js";
import { intFromEnv } from "./config.js";
import { ConfigError, describeError } from "./errors.js";
import type { Logger } from "./logger.js";
import { isNoResponders, isTimeout } from "./nats-errors.js";

/*
 * Sending a command that changes a container to its host's agent, for every sender (the
 * handlers' runtime, the gateway): stamped with its lifetime and signed at send time, per
 * attempt, and the agent's answer read into one result.
 */

/** A command as a decision takes it: its lifetime is stamped when it is sent. */
export type CommandDraft<C> = C extends unknown ? Omit<C, "issuedAt" | "expiresAt"> : never;
export type RestartDraft = CommandDraft<RestartCommand>;
/** A command that changes a container. */
export type ContainerCommand = RestartCommand | StopCommand | RecreateCommand;
export type ContainerCommandDraft = CommandDraft<ContainerCommand>;

/** The verb a command is sent on, from its type. */
export function verbOf(command: Pick<ContainerCommand, "type">): ContainerCommandVerb {
  return command.type === RESTART_COMMAND_TYPE
    ? "restart"
    : command.type === RECREATE_COMMAND_TYPE
      ? "recreate"
      : "stop";
}

/** How a sender signs: with its key, or unsigned when it has none; each command lives ttlMs. */
export interface CommandSigning {
  key?: CommandSigningKey;
  ttlMs: number;
}

/** The signer settings of the handler and the gateway. */
export const COMMAND_SIGNING_ENV = {
  FLEETHEAL_COMMAND_SIGNING_KEY_FILE: z.string().min(1).max(4096).optional(),
  FLEETHEAL_COMMAND_TTL_MS: intFromEnv({
    min: 1_000,
    max: MAX_COMMAND_LIFETIME_MS,
    default: 30_000,
  }),
};

/** Reads the signing key named by the environment; a bad file is a ConfigError naming it. */
export function commandSigningFrom(e: {
  FLEETHEAL_COMMAND_SIGNING_KEY_FILE?: string | undefined;
  FLEETHEAL_COMMAND_TTL_MS: number;
}): CommandSigning {
  const file = e.FLEETHEAL_COMMAND_SIGNING_KEY_FILE;
  if (file === undefined) return { ttlMs: e.FLEETHEAL_COMMAND_TTL_MS };
  try {
    return { key: loadCommandSigningKey(file), ttlMs: e.FLEETHEAL_COMMAND_TTL_MS };
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  FLEETHEAL_COMMAND_SIGNING_KEY_FILE=${JSON.stringify(file)}: ${describeError(error)}`,
    );
  }
}

/** Says at start how this process signs commands; unsigned ones only work on insecure agents. */
export function logCommandSigning(log: Logger, signing: CommandSigning): void {
  if (signing.key) {
    log.info({ signingKey: signing.key.publicKey }, "commands are signed");
  } else {
    log.warn(
      "FLEETHEAL_COMMAND_SIGNING_KEY_FILE is not set: restart and stop commands are sent unsigned, and agents refuse them unless FLEETHEAL_INSECURE_UNSIGNED_COMMANDS=true",
    );
  }
}

/** The command with its lifetime from `now`, its exact payload, and the headers that sign it. */
export function signCommand(
  draft: ContainerCommandDraft,
  signing: CommandSigning,
  now = Date.now(),
): { command: ContainerCommand; payload: Uint8Array; headers: MsgHdrs | undefined } {
  const command: ContainerCommand = {
    ...draft,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + signing.ttlMs).toISOString(),
  };
  const payload = encode(command);
  if (!signing.key) return { command, payload, headers: undefined };
  const headers = natsHeaders();
  headers.set(COMMAND_SIGNATURE_HEADERS.key, signing.key.publicKey);
  headers.set(COMMAND_SIGNATURE_HEADERS.signature, signing.key.sign(payload));
  return { command, payload, headers };
}

/** The agent's answer to a command, or why there is none. */
export type AgentCommandResult =
  | { ok: true; reply: CommandReply }
  /** The agent refused it unexecuted (403): `message` is its `<refusal code>: <detail>`. */
  | { ok: false; code: "command-refused"; message: string }
  /** Any other service error: a malformed command (400), an agent failure (500). */
  | { ok: false; code: "rejected"; status: number; message: string }
  /** An answer that is not a command reply. */
  | { ok: false; code: "bad-reply"; message: string }
  /** No answer: nobody serves the host, or nobody answered in time, or the send failed. */
  | { ok: false; code: "no-responders" | "timeout" | "error"; message: string; cause: unknown };

/** Signs `draft` now and sends it to its host's agent; never throws. */
export async function sendAgentCommand(
  nc: NatsConnection,
  draft: ContainerCommandDraft,
  options: { signing: CommandSigning; timeoutMs: number },
): Promise<AgentCommandResult> {
  const verb = verbOf(draft);
  try {
    const { payload, headers } = signCommand(draft, options.signing);
    const msg = await nc.request(commandSubject(draft.host, verb), payload, {
      timeout: options.timeoutMs,
      ...(headers ? { headers } : {}),
    });
    const serviceError = ServiceError.toServiceError(msg);
    if (serviceError) {
      return serviceError.code === 403
        ? { ok: false, code: "command-refused", message: serviceError.message }
        : { ok: false, code: "rejected", status: serviceError.code, message: serviceError.message };
    }
    const decoded = decode(CommandReply, msg.data);
    return decoded.ok
      ? { ok: true, reply: decoded.value }
      : { ok: false, code: "bad-reply", message: decoded.error.message };
  } catch (error) {
    const code = isNoResponders(error) ? "no-responders" : isTimeout(error) ? "timeout" : "error";
    return { ok: false, code, message: describeError(error), cause: error };
  }
}
