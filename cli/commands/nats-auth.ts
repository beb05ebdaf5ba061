import { join, resolve } from "node:path";
import { describeError } from "../../common/errors.js";
import {
  AUTH_FILE,
  envFile,
  FleetCredentialsError,
  writeFleetCredentials,
} from "../../common/fleet-credentials.js";
import { InvalidHostsError } from "../../common/nats-permissions.js";
import { ensureServerCertificate } from "../../common/tls-material.js";
import { UsageError } from "../args.js";
import { type CommandIo, defineCommand } from "../command.js";

// The layout of the accounts is common/nats-accounts.ts; the files are
// common/fleet-credentials.ts.

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");

/**
 * `fleetheal nats-auth --hosts a,b,c [--remove d] [--out dir] [--force]`: creates or updates the
 * credentials in `--out` (mode 0700). Hosts in `--hosts` that have no credentials yet get them;
 * `--remove` takes hosts out; every other key is kept, so running roles keep working and
 * nats-server only needs a reload. `--force` issues every key anew.
 */
export const natsAuth = defineCommand({
  name: "nats-auth",
  summary: `Writes a nats-server include file (${AUTH_FILE}): an account per host, FLEET for handler and gateway, READER for read-only users; per user an NKEY seed <user>.nk (mode 0600) and a <user>.env; command-signing keys. Run again to add or --remove hosts: other keys are kept, so reload nats-server. --tls-names writes a server certificate signed by the CA of --ca-dir (up's <data dir>/tls, for a move to a cluster). See docs/SECURITY.md.`,
  usage: "fleetheal nats-auth --hosts <a,b,c> [--remove <d,e>] [--out <dir>] [--force]",
  options: {
    hosts: {
      type: "string",
      value: "<a,b,c>",
      description: "The fleet's host ids, comma-separated: those without credentials get them",
    },
    remove: { type: "string", value: "<d,e>", description: "Hosts to take out of the fleet" },
    out: {
      type: "string",
      value: "<dir>",
      description: "Where the files are written (mode 0700) [./nats-auth]",
    },
    force: { type: "boolean", description: "Issue every key anew" },
    "tls-names": {
      type: "string",
      value: "<a,b>",
      description:
        "Instead: a NATS server's certificate for these DNS names and IP addresses, in <out>/tls/<first name>/",
    },
    "ca-dir": {
      type: "string",
      value: "<dir>",
      description: "With --tls-names: the CA that signs it, made there if it has none [<out>/tls]",
    },
  },
  exitCodes: `Exit codes:
  0  written
  1  the files could not be written
  2  usage error, invalid host ids, or credentials it cannot update`,
  async run({ options }, { io }) {
    const dir = resolve(options.out ?? "nats-auth");
    if (options["tls-names"] !== undefined) {
      return serverCertificate(dir, list(options["tls-names"]), options["ca-dir"], io);
    }
    if (options.hosts === undefined && options.remove === undefined) {
      throw new UsageError("--hosts is required: the comma-separated ids of the fleet's hosts");
    }
    let result: ReturnType<typeof writeFleetCredentials>;
    try {
      result = writeFleetCredentials(dir, {
        addHosts: list(options.hosts),
        removeHosts: list(options.remove),
        force: options.force ?? false,
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
  },
});

/**
 * `--tls-names`: a NATS server's certificate for these names, signed by the CA of `--ca-dir`
 * (default `<out>/tls`; made there if it has none), in `<out>/tls/<first name>/`. With the CA of
 * a `fleetheal up` (`<data dir>/tls`), agents that joined it trust the new servers too.
 */
async function serverCertificate(
  dir: string,
  names: string[],
  caDir: string | undefined,
  io: CommandIo,
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
