// `fleetheal nats-auth --hosts a,b,c [--remove d] [--out dir] [--force]`: writes the nats-server
// accounts include file, NKEY seeds and env files for every role, and command-signing keys. The
// layout is common/nats-accounts.ts; the files are common/fleet-credentials.ts.

import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../common/errors.js";
import {
  AUTH_FILE,
  envFile,
  FleetCredentialsError,
  writeFleetCredentials,
} from "../common/fleet-credentials.js";
import { InvalidHostsError } from "../common/nats-permissions.js";
import { ensureServerCertificate } from "../common/tls-material.js";

export { AUTH_FILE };

export interface NatsAuthIo {
  out(line: string): void;
  err(line: string): void;
}

const USAGE = "usage: fleetheal nats-auth --hosts <a,b,c> [--remove <d,e>] [--out <dir>] [--force]";

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");

/**
 * Creates or updates the credentials in `--out` (default `./nats-auth`, mode 0700). Hosts in
 * `--hosts` that have no credentials yet get them; `--remove` takes hosts out; every other key is
 * kept, so running roles keep working and nats-server only needs a reload. `--force` issues every
 * key anew. Returns the exit code.
 */
export async function natsAuthCommand(args: string[], io: NatsAuthIo): Promise<number> {
  let values: {
    hosts?: string;
    remove?: string;
    out?: string;
    force?: boolean;
    "tls-names"?: string;
    "ca-dir"?: string;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        hosts: { type: "string" },
        remove: { type: "string" },
        out: { type: "string" },
        force: { type: "boolean" },
        "tls-names": { type: "string" },
        "ca-dir": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.err(`${describeError(error)}; ${USAGE}`);
    return 2;
  }
  const dir = resolve(values.out ?? "nats-auth");
  if (values["tls-names"] !== undefined) {
    return serverCertificate(dir, list(values["tls-names"]), values["ca-dir"], io);
  }
  if (values.hosts === undefined && values.remove === undefined) {
    io.err(`--hosts is required: the comma-separated ids of the fleet's hosts; ${USAGE}`);
    return 2;
  }
  let result: ReturnType<typeof writeFleetCredentials>;
  try {
    result = writeFleetCredentials(dir, {
      addHosts: list(values.hosts),
      removeHosts: list(values.remove),
      force: values.force ?? false,
    });
  } catch (error) {
    if (error instanceof InvalidHostsError) {
      io.err(`--hosts: ${describeError(error)}`);
      return 2;
    }
    if (error instanceof FleetCredentialsError) {
      io.err(describeError(error));
      return 2;
    }
    io.err(`cannot write ${dir}: ${describeError(error)}`);
    return 1;
  }
  const authFile = join(dir, AUTH_FILE);
  io.out(
    `wrote ${authFile}: include it in nats-server.conf, then reload nats-server (nats-server --signal reload)`,
  );
  for (const user of result.users) {
    const state = result.created.includes(user.user) ? "new" : "kept";
    io.out(
      `  ${user.user.padEnd(24)} ${user.role.padEnd(8)} ${state.padEnd(5)} ${envFile(dir, user.user)}`,
    );
  }
  for (const host of result.removed) io.out(`  removed host ${host}`);
  return 0;
}

/**
 * `--tls-names`: a NATS server's certificate for these names, signed by the CA of `--ca-dir`
 * (default `<out>/tls`; made there if it has none), in `<out>/tls/<first name>/`. With the CA of
 * a `fleetheal up` (`<data dir>/tls`), agents that joined it trust the new servers too.
 */
async function serverCertificate(
  dir: string,
  names: string[],
  caDir: string | undefined,
  io: NatsAuthIo,
): Promise<number> {
  if (names.length === 0) {
    io.err("--tls-names: the server's DNS names and IP addresses, comma-separated");
    return 2;
  }
  const ca = resolve(caDir ?? join(dir, "tls"));
  const out = join(dir, "tls", names[0] as string);
  try {
    const m = await ensureServerCertificate(ca, out, names);
    io.out(`wrote ${m.certFile} and ${m.keyFile} (for ${names.join(", ")}), signed by ${m.caFile}`);
    return 0;
  } catch (error) {
    io.err(`cannot write ${out}: ${describeError(error)}`);
    return 1;
  }
}
