import type { CommandSigning } from "../common/agent-commands.js";
import {
  type CommandSigningKey,
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
  loadCommandSigningKey,
} from "../common/command-signing.js";
import { splitCommaList } from "../common/config.js";
import { signingSeedFile } from "../common/fleet-credentials.js";
import { ensureSecretFile } from "./data-dir.js";

/** The signing key `fleetheal up` makes in its data dir, as `nk -gen operator` would. */
export const UP_SIGNING_KEY_FILE = "command-signing.nk";

/**
 * `fleetheal up` signs its own commands like any fleet: its handler and gateway sign with an
 * operator key (FLEETHEAL_COMMAND_SIGNING_KEY_FILE, else one made once in the data dir and
 * kept), and its agent trusts that key besides any in FLEETHEAL_COMMAND_KEYS. Returns the
 * variables to add to every role's environment.
 */
export function upCommandSigningEnv(
  dataDir: string,
  env: NodeJS.ProcessEnv,
): { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: string; FLEETHEAL_COMMAND_KEYS?: string } {
  const keyFile =
    env.FLEETHEAL_COMMAND_SIGNING_KEY_FILE ||
    ensureSecretFile(dataDir, UP_SIGNING_KEY_FILE, {
      valid: (content) => isSeed(content),
      make: generateCommandSigningSeed,
    });
  let publicKey: string;
  try {
    publicKey = loadCommandSigningKey(keyFile).publicKey;
  } catch {
    // The handler's configuration reports a bad key file, naming the variable.
    return { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: keyFile };
  }
  const keys = splitCommaList(env.FLEETHEAL_COMMAND_KEYS ?? "").filter((k) => k !== publicKey);
  return {
    FLEETHEAL_COMMAND_SIGNING_KEY_FILE: keyFile,
    FLEETHEAL_COMMAND_KEYS: [...keys, publicKey].join(","),
  };
}

function isSeed(content: string): boolean {
  try {
    commandSigningKeyFromSeed(content);
    return true;
  } catch {
    return false;
  }
}

/** The signing keys of the handler and the gateway in a credentials directory of nats-auth's. */
export function credentialSigning(dir: string): {
  handler: CommandSigningKey;
  gateway: CommandSigningKey;
} {
  return {
    handler: loadCommandSigningKey(signingSeedFile(dir, "handler")),
    gateway: loadCommandSigningKey(signingSeedFile(dir, "gateway")),
  };
}

/** A signer's configuration with `key`, unless FLEETHEAL_COMMAND_SIGNING_KEY_FILE named one. */
export function withSigningKey<C extends { commandSigning: CommandSigning }>(
  config: C,
  key: CommandSigningKey,
): C {
  if (config.commandSigning.key) return config;
  return { ...config, commandSigning: { ...config.commandSigning, key } };
}
