// The control plane's command signing key for one test process. Every role that startRole
// starts signs with it (handler, gateway) or trusts it (agent) unless the test says otherwise,
// so integration tests run with signing on, as production does; tests that command an agent
// themselves sign with it too.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MsgHdrs } from "@nats-io/nats-core";
import {
  type ContainerCommand,
  type ContainerCommandDraft,
  signCommand,
} from "../../common/agent-commands.js";
import {
  type CommandSigningKey,
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../../common/command-signing.js";

let made: { seedFile: string; key: CommandSigningKey } | undefined;

/** The test process's signing key, and the seed file the signing roles read it from. */
export function testSigningKey(): { seedFile: string; key: CommandSigningKey } {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), "fleetheal-test-signing-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const seed = generateCommandSigningSeed();
  const seedFile = join(dir, "command-signing.nk");
  writeFileSync(seedFile, `${seed}\n`, { mode: 0o600 });
  made = { seedFile, key: commandSigningKeyFromSeed(seed) };
  return made;
}

/**
 * What a role (a `FleetRole` of fleetheal.ts, which imports this file) needs in its environment
 * to trust the test process's key (the agent) or sign with it (every other role).
 */
export function signingEnv(role: string): Record<string, string> {
  const { seedFile, key } = testSigningKey();
  return role === "agent"
    ? { FLEETHEAL_COMMAND_KEYS: key.publicKey }
    : { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: seedFile };
}

/**
 * A restart or stop as the control plane sends it: stamped with a lifetime from `at` (now) and
 * signed by `key` (the test process's; null: unsigned). The payload and headers are what goes
 * on the wire.
 */
export function signedCommand(
  draft: ContainerCommandDraft,
  options: { key?: CommandSigningKey | null; at?: number; ttlMs?: number } = {},
): { command: ContainerCommand; payload: Uint8Array; headers: MsgHdrs | undefined } {
  const key = options.key === null ? undefined : (options.key ?? testSigningKey().key);
  return signCommand(
    draft,
    { ...(key ? { key } : {}), ttlMs: options.ttlMs ?? 30_000 },
    options.at ?? Date.now(),
  );
}
