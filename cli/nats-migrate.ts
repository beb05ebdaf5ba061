// `fleetheal nats-migrate export --out <file>` and `fleetheal nats-migrate import --in <file>`:
// carries a deployment's streams, buckets and handler positions from the global account `$G`
// (the passwords of an earlier `fleetheal nats-auth`) into the FLEET account of the accounts
// layout. `$G` cannot export to another account, and a server whose configuration declares
// accounts gives `$G` no JetStream at all, so the data goes through a file: exported with the old
// handler's credentials, imported with the new ones. docs/DEPLOY.md has the whole sequence.

import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { type NatsConnection, nkeyAuthenticator } from "@nats-io/nats-core";
import { pino } from "pino";
import { ConfigError, describeError } from "../common/errors.js";
import { seedFile } from "../common/fleet-credentials.js";
import { readUserSeed } from "../common/nats-config.js";
import { connectOneShot } from "../common/nats-one-shot.js";
import { agentInboxPrefix, agentUser } from "../common/nats-permissions.js";
import { ExportRefused, exportStreams, type MigrateIo } from "./nats-migrate-export.js";
import { ExportFileError } from "./nats-migrate-file.js";
import { type AgentPublishers, ImportRefused, importStreams } from "./nats-migrate-import.js";

/**
 * Runs `export` (to `file`) or `import` (from `file`, with the agents' keys in `keys`); returns
 * the exit code: 0 done and every count checked, 1 failed (NATS unreachable or failing, a stream
 * that changed while it was exported, an import refused or whose counts do not match, an
 * unreadable or incomplete file), 2 configuration (variables, refused credentials or TLS, an
 * existing output file, a missing input file, missing keys).
 */
export async function runNatsMigrate(
  verb: "export" | "import",
  file: string,
  keys: string | undefined,
  env: NodeJS.ProcessEnv,
  io: MigrateIo,
): Promise<number> {
  const connections: NatsConnection[] = [];
  try {
    return verb === "export"
      ? await runExport(resolve(file), env, io, connections)
      : await runImport(resolve(file), keys, env, io, connections);
  } catch (error) {
    if (error instanceof ExportRefused || error instanceof ConfigError) {
      io.err(error.message);
      return 2;
    }
    if (error instanceof ImportRefused) {
      io.err(`import refused, nothing stored: ${error.message}`);
      return error.exitCode;
    }
    io.err(
      error instanceof ExportFileError ? error.message : `${verb} failed: ${describeError(error)}`,
    );
    return 1;
  } finally {
    await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  }
}

async function runExport(
  file: string,
  env: NodeJS.ProcessEnv,
  io: MigrateIo,
  connections: NatsConnection[],
): Promise<number> {
  if (existsSync(file)) {
    io.err(`${file} exists; remove it or choose another --out`);
    return 2;
  }
  const connected = await connectFor("export", env, io, connections);
  if (typeof connected === "number") return connected;
  io.out(`exporting to ${file}`);
  const counts = await exportStreams(connected.nc, file, io);
  const changed = counts.streams.filter((s) => s.messages !== s.expected);
  for (const s of changed) {
    io.err(
      `${s.name} held ${s.expected} messages when the export began and ${s.messages} were read: it changed meanwhile. Stop every role, remove ${file} and export again`,
    );
  }
  if (changed.length > 0) return 1;
  io.out(
    `exported ${file}; import it with the new handler's credentials: fleetheal nats-migrate import --in ${file}`,
  );
  return 0;
}

async function runImport(
  file: string,
  keys: string | undefined,
  env: NodeJS.ProcessEnv,
  io: MigrateIo,
  connections: NatsConnection[],
): Promise<number> {
  if (!existsSync(file)) {
    io.err(`${file} does not exist: give --in the file that nats-migrate export wrote`);
    return 2;
  }
  const connected = await connectFor("import", env, io, connections);
  if (typeof connected === "number") return connected;
  const nkeyFile = env.FLEETHEAL_NATS_NKEY_FILE;
  // With accounts, a host's events and snapshot reach FLEET only through its own account.
  const agents =
    connected.settings.auth?.method === "nkey" && nkeyFile
      ? agentPublishers(resolve(keys ?? dirname(nkeyFile)), env, connections)
      : undefined;
  io.out(`importing ${file}`);
  const ok = await importStreams({
    file,
    handler: connected.nc,
    ...(agents ? { agents } : {}),
    replicas: connected.settings.jsReplicas,
    io,
    log: stderrLogger(io),
  });
  io[ok ? "out" : "err"](
    ok
      ? "imported; every count checks out. Start the roles with their new environment files"
      : "imported, but the counts above do not match: do not start the roles; see docs/DEPLOY.md",
  );
  return ok ? 0 : 1;
}

/** The connection of the verb, kept for closing; the exit code when there is none. */
async function connectFor(
  verb: string,
  env: NodeJS.ProcessEnv,
  io: MigrateIo,
  connections: NatsConnection[],
) {
  const connected = await connectOneShot(env, `fleetheal-nats-migrate-${verb}`);
  if (!connected.ok) {
    io.err(connected.message);
    return connected.exitCode;
  }
  connections.push(connected.nc);
  return connected;
}

/** Connections as each host's agent, from the keys `fleetheal nats-auth` wrote into `dir`. */
function agentPublishers(
  dir: string,
  env: NodeJS.ProcessEnv,
  connections: NatsConnection[],
): AgentPublishers {
  const clients = new Map<string, Promise<JetStreamClient>>();
  const connectAs = async (host: string): Promise<JetStreamClient> => {
    const seed = readUserSeed(readFileOrUndefined(seedFile(dir, agentUser(host))));
    if (typeof seed !== "object") {
      throw new ConfigError(`${seedFile(dir, agentUser(host))}: ${seed ?? "cannot be read"}`);
    }
    const connected = await connectOneShot(env, `fleetheal-nats-migrate-${host}`, (s) => ({
      ...s,
      auth: { method: "nkey", user: seed.publicKey },
      authenticator: nkeyAuthenticator(seed.seed),
      inboxPrefix: agentInboxPrefix(host),
    }));
    if (!connected.ok) throw new ConfigError(`as agent-${host}: ${connected.message}`);
    connections.push(connected.nc);
    return jetstream(connected.nc);
  };
  return {
    dir,
    has: (host) => existsSync(seedFile(dir, agentUser(host))),
    js: (host) => {
      let client = clients.get(host);
      if (!client) {
        client = connectAs(host);
        clients.set(host, client);
      }
      return client;
    },
  };
}

function readFileOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Warnings of the shared code (waiting for JetStream, a stream that accepts rollups) as lines. */
function stderrLogger(io: MigrateIo) {
  return pino(
    { level: "warn", base: undefined },
    {
      write(line: string) {
        const record = JSON.parse(line) as { msg?: string; err?: string };
        io.err(`${record.msg ?? ""}${record.err ? ` (${record.err})` : ""}`);
      },
    },
  );
}
