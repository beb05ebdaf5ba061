// `fleetheal nats-auth --hosts a,b,c [--out dir]`: writes the nats-server authorization include
// file and one env file and password file per user. The permissions are common/nats-permissions.ts.

import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../common/errors.js";
import { fleetNatsUsers, renderAuthorization, renderEnvFile } from "../common/nats-permissions.js";

/** The include file's name inside the output directory. */
export const AUTH_FILE = "fleetheal-auth.conf";

export interface NatsAuthIo {
  out(line: string): void;
  err(line: string): void;
}

/** A random password: 32 URL-safe characters (192 bits). */
export function randomPassword(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * Writes `<out>/fleetheal-auth.conf` (mode 0600: it holds the passwords) and, per user,
 * `<user>.password` (0600) and `<user>.env`. Refuses to overwrite an existing include file unless
 * `--force`, because new passwords lock out every running role. Returns the exit code.
 */
export function natsAuthCommand(args: string[], io: NatsAuthIo): number {
  let values: { hosts?: string; out?: string; force?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        hosts: { type: "string" },
        out: { type: "string" },
        force: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.err(`${describeError(error)}; usage: fleetheal nats-auth --hosts <a,b,c> [--out <dir>]`);
    return 2;
  }
  if (values.hosts === undefined) {
    io.err("--hosts is required: the comma-separated ids of the fleet's hosts");
    return 2;
  }
  const hosts = values.hosts
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  let users: ReturnType<typeof fleetNatsUsers>;
  try {
    users = fleetNatsUsers(hosts);
  } catch (error) {
    io.err(`--hosts: ${describeError(error)}`);
    return 2;
  }
  const dir = resolve(values.out ?? "nats-auth");
  const authFile = join(dir, AUTH_FILE);
  if (existsSync(authFile) && !values.force) {
    io.err(
      `${authFile} exists; pass --force to replace it (every role then needs its new password)`,
    );
    return 2;
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const passwords: Record<string, string> = {};
    for (const user of users) {
      const password = randomPassword();
      passwords[user.user] = password;
      const passwordFile = join(dir, `${user.user}.password`);
      writePrivate(passwordFile, `${password}\n`);
      writeFileSync(join(dir, `${user.user}.env`), renderEnvFile(user, passwordFile), {
        mode: 0o644,
      });
    }
    const header = [
      `fleetheal NATS users for hosts ${hosts.join(", ")}, written by \`fleetheal nats-auth\`.`,
      "Include it from nats-server.conf: include ./fleetheal-auth.conf",
      "Passwords are in plain text: keep this file readable by nats-server only.",
    ].join("\n");
    writePrivate(authFile, renderAuthorization(users, passwords, header));
  } catch (error) {
    io.err(`cannot write ${dir}: ${describeError(error)}`);
    return 1;
  }
  io.out(`wrote ${authFile} (include it in nats-server.conf)`);
  for (const user of users) {
    io.out(`  ${user.user.padEnd(24)} ${user.role.padEnd(8)} ${join(dir, `${user.user}.env`)}`);
  }
  return 0;
}

function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  // The mode of writeFileSync applies only to a new file.
  chmodSync(file, 0o600);
}
