// The deployed topology of docs/DEPLOY.md, rendered for one machine: the NATS cluster from the
// files in infra/nats/ and the roles from the units in infra/systemd/. Tests read the very files
// operators install and change only what a single loopback machine forces on them (addresses,
// ports and paths), so a test that passes here vouches for those files, not for a copy of them.

import { execFile } from "node:child_process";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO } from "./fleetheal.js";
import {
  type ClusterNodeConfig,
  type ClusterNodePlan,
  type NatsClusterHandle,
  startNatsCluster,
} from "./nats-cluster.js";
import { waitFor } from "./wait.js";

export const INFRA_NATS = path.join(REPO, "infra", "nats");
export const INFRA_SYSTEMD = path.join(REPO, "infra", "systemd");
/** The configuration every node runs, unchanged. */
export const NATS_CONF = "nats-server.conf";
/** The include that `fleetheal nats-auth` writes, next to NATS_CONF. */
export const AUTH_INCLUDE = "fleetheal-auth.conf";
/** Where docs/DEPLOY.md installs fleetheal; the units run its CLI from there. */
export const INSTALL_DIR = "/opt/fleetheal";
export const INSTALL_CLI = `${INSTALL_DIR}/bin/fleetheal.js`;
/** Where docs/DEPLOY.md keeps configuration. */
export const CONFIG_DIR = "/etc/fleetheal";
/** The unit every NATS node runs, as `nats-server@nats-N`. */
export const NATS_UNIT = "nats-server@.service";

// ---------------------------------------------------------------------------------------------
// Environment files, read the way systemd's EnvironmentFile= reads them.

/**
 * The variables of an environment file: `KEY=VALUE` lines; blank lines and lines starting with
 * `#` or `;` are skipped; one pair of surrounding quotes is removed. That is all the files here
 * use of systemd's syntax, and a line this parser does not understand is an error rather than a
 * silent difference from systemd.
 */
export function parseEnvFile(text: string, source = "env file"): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [n, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${source}:${n + 1}: not KEY=VALUE: ${raw}`);
    let value = (m[2] as string).trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    }
    env[m[1] as string] = value;
  }
  return env;
}

/**
 * `text` with the value of each key in `values` replaced, comments and order kept. Every key
 * must already be set in `text`: substituting a variable the shipped file does not have would
 * test a file nobody installs.
 */
export function substituteEnv(
  text: string,
  values: Readonly<Record<string, string>>,
  source = "env file",
): string {
  const lines = text.split("\n");
  for (const [key, value] of Object.entries(values)) {
    const i = lines.findIndex((l) => l.startsWith(`${key}=`));
    if (i < 0) throw new Error(`${source} does not set ${key}`);
    lines[i] = `${key}=${value}`;
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// infra/nats

/** The `$NAME` variables a nats-server configuration refers to, outside comments. */
export function confVariables(conf: string): Set<string> {
  const names = new Set<string>();
  for (const line of conf.split("\n")) {
    const code = line.replace(/#.*$/, "");
    for (const m of code.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1] as string);
  }
  return names;
}

/**
 * The configuration with its commented `tls { … }` blocks enabled the way its comments say
 * (remove the `# ` in front of each line of the block), and the example certificate paths
 * replaced by `files`.
 */
export function enableTls(
  conf: string,
  files: { cert: string; key: string; ca: string },
): { conf: string; blocks: number } {
  const out: string[] = [];
  let inBlock = false;
  let blocks = 0;
  for (const line of conf.split("\n")) {
    const m = /^(\s*)# (.*)$/.exec(line);
    if (!inBlock && m && /^tls \{\s*$/.test(m[2] as string)) {
      inBlock = true;
      blocks++;
    }
    if (inBlock && m) {
      out.push(`${m[1]}${m[2]}`);
      if (/^\}\s*$/.test(m[2] as string)) inBlock = false;
    } else {
      out.push(line);
    }
  }
  const replaced = out
    .join("\n")
    .replace(/"\/etc\/fleetheal\/nats\/tls\/ca\.pem"/g, JSON.stringify(files.ca))
    .replace(/"\/etc\/fleetheal\/nats\/tls\/[a-z-]*cert\.pem"/g, JSON.stringify(files.cert))
    .replace(/"\/etc\/fleetheal\/nats\/tls\/[a-z-]*key\.pem"/g, JSON.stringify(files.key));
  return { conf: replaced, blocks };
}

/** `nats-server -c <file> -t` with `env`: resolves when the server accepts the configuration. */
export function checkNatsConfig(
  binary: string,
  configFile: string,
  env: Readonly<Record<string, string>>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      ["-c", configFile, "-t"],
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (err) reject(new Error(`nats-server rejected ${configFile}: ${output || err.message}`));
        else resolve(output);
      },
    );
  });
}

/** Which node's env file of infra/nats/ a 0-based node index uses. */
export const nodeEnvFile = (index: number) => path.join(INFRA_NATS, `nats-${index + 1}.env`);

/**
 * Node `plan.index` of the cluster, from infra/nats/: nats-server.conf copied unchanged next to
 * the users' include, and nats-N.env with its addresses, ports and store moved to this machine
 * (routes keep their scheme and order; every node is on 127.0.0.1 with its own ports).
 */
export async function renderNatsNode(
  plan: ClusterNodePlan,
  authInclude: string,
): Promise<ClusterNodeConfig> {
  const configFile = path.join(plan.dir, NATS_CONF);
  await copyFile(path.join(INFRA_NATS, NATS_CONF), configFile);
  await copyFile(authInclude, path.join(plan.dir, AUTH_INCLUDE));
  const source = nodeEnvFile(plan.index);
  const shipped = await readFile(source, "utf8");
  const routes = parseEnvFile(shipped, source).NATS_ROUTES ?? "";
  const urls = /^\[(.*)\]$/.exec(routes)?.[1]?.split(",") ?? [];
  if (urls.length !== plan.clusterPorts.length) {
    throw new Error(
      `${source}: NATS_ROUTES lists ${urls.length} routes for ${plan.clusterPorts.length} nodes`,
    );
  }
  const localRoutes = urls.map((u, i) => {
    const url = new URL(u);
    url.hostname = "127.0.0.1";
    url.port = String(plan.clusterPorts[i]);
    return url.toString().replace(/\/$/, "");
  });
  const storeDir = path.join(plan.dir, "store");
  const rendered = substituteEnv(
    shipped,
    {
      NATS_HOST: "127.0.0.1",
      NATS_PORT: String(plan.port),
      NATS_CLUSTER_PORT: String(plan.clusterPort),
      NATS_MONITOR: `127.0.0.1:${plan.monitorPort}`,
      NATS_ROUTES: `[${localRoutes.join(",")}]`,
      NATS_STORE_DIR: storeDir,
    },
    source,
  );
  const envFile = path.join(plan.dir, path.basename(source));
  await writeFile(envFile, rendered);
  const env = parseEnvFile(rendered, envFile);
  const serverName = env.NATS_SERVER_NAME;
  if (!serverName) throw new Error(`${source} does not set NATS_SERVER_NAME`);
  return { serverName, configFile, env, storeDir };
}

/** The 3-node cluster of infra/nats/ on loopback, with the users of `authInclude`. */
export function startFleetNatsCluster(authInclude: string): Promise<NatsClusterHandle> {
  return startNatsCluster(3, "fleetheal", {
    configure: (plan) => renderNatsNode(plan, authInclude),
  });
}

// ---------------------------------------------------------------------------------------------
// infra/systemd

/** A unit file: each section's settings in file order (a key may repeat, as systemd allows). */
export type UnitFile = Map<string, Array<[key: string, value: string]>>;

/**
 * Parses a systemd unit file: `[Section]` headers, `Key=Value` settings, `#`/`;` comments and
 * backslash continuations. Anything else is an error.
 */
export function parseUnit(text: string, source = "unit"): UnitFile {
  const unit: UnitFile = new Map();
  let section: Array<[string, string]> | undefined;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    let line = (lines[n] as string).trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && n + 1 < lines.length) {
      line = `${line.slice(0, -1)} ${(lines[++n] as string).trim()}`;
    }
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = [];
      unit.set(header[1] as string, section);
      continue;
    }
    const setting = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!setting || !section) throw new Error(`${source}:${n + 1}: not a setting: ${line}`);
    section.push([setting[1] as string, (setting[2] as string).trim()]);
  }
  return unit;
}

/** Every value of `key` in `section`, in order. */
export function unitValues(unit: UnitFile, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The one value of `key` in `section`; throws when it is missing or set twice. */
export function unitValue(unit: UnitFile, section: string, key: string): string {
  const values = unitValues(unit, section, key);
  if (values.length !== 1) {
    throw new Error(`[${section}] ${key} is set ${values.length} times, expected once`);
  }
  return values[0] as string;
}

export interface UnitCommand {
  /** The fleetheal command the unit runs: agent, handler or gateway. */
  role: string;
  /** Its environment: Environment= settings, then the EnvironmentFile= files in order. */
  env: Record<string, string>;
  /** What StateDirectory= asks systemd to create before the start, each through `mapPath`. */
  stateDirectories: { path: string; mode: number }[];
}

/**
 * What a fleetheal unit of infra/systemd/ runs, resolved on this machine: `%i` becomes
 * `instance`, and each absolute path (environment files, Environment= values, state
 * directories) goes through `mapPath` (for example /etc/fleetheal to a host's directory in a
 * test). ExecStart must be `node /opt/fleetheal/bin/fleetheal.js <role>`.
 */
export async function unitCommand(
  unitName: string,
  opts: { instance?: string; mapPath: (p: string) => string },
): Promise<UnitCommand> {
  const file = path.join(INFRA_SYSTEMD, unitName);
  const unit = parseUnit(await readFile(file, "utf8"), file);
  const expand = (v: string) => v.replaceAll("%i", opts.instance ?? "");
  const exec = expand(unitValue(unit, "Service", "ExecStart")).split(/\s+/);
  if (exec.length !== 3 || exec[0] !== "node" || exec[1] !== INSTALL_CLI) {
    throw new Error(`${file}: ExecStart is not \`node ${INSTALL_CLI} <role>\`: ${exec.join(" ")}`);
  }
  const env: Record<string, string> = {};
  // systemd applies Environment= first and lets the files override it.
  for (const assignment of unitValues(unit, "Service", "Environment")) {
    for (const [key, value] of Object.entries(parseEnvFile(expand(assignment), file))) {
      env[key] = value.startsWith("/") ? opts.mapPath(value) : value;
    }
  }
  for (const raw of unitValues(unit, "Service", "EnvironmentFile")) {
    // A leading "-" makes the file optional in systemd; none of the shipped units uses it, and
    // the test wants a missing file to fail as it would on a host.
    const envFile = opts.mapPath(expand(raw));
    Object.assign(env, parseEnvFile(await readFile(envFile, "utf8"), envFile));
  }
  // systemd's default StateDirectoryMode is 0755.
  const modes = unitValues(unit, "Service", "StateDirectoryMode");
  const mode = Number.parseInt(modes.at(-1) ?? "0755", 8);
  const stateDirectories = unitValues(unit, "Service", "StateDirectory")
    .flatMap((v) => expand(v).split(/\s+/))
    .map((name) => ({ path: opts.mapPath(`/var/lib/${name}`), mode }));
  return { role: exec[2] as string, env, stateDirectories };
}

// ---------------------------------------------------------------------------------------------
// Changing the users of a running cluster, as docs/DEPLOY.md does

/** Copies a new accounts include next to every node's nats-server.conf, as an operator would. */
export async function installAuthInclude(
  cluster: NatsClusterHandle,
  authInclude: string,
): Promise<void> {
  for (const node of cluster.nodes) {
    await copyFile(authInclude, path.join(path.dirname(node.configFile), AUTH_INCLUDE));
  }
}

const RELOADED = "Reloaded server configuration";

/**
 * `systemctl reload nats-server@<node>`: runs the ExecReload= commands of nats-server@.service
 * with `$MAINPID` set to the node's process, then waits until the node has logged one finished
 * reload for each SIGHUP those commands sent.
 */
export async function reloadNatsNode(cluster: NatsClusterHandle, index: number): Promise<void> {
  const node = cluster.nodes[index];
  if (!node?.pid) throw new Error(`cluster node ${index} is not running`);
  const file = path.join(INFRA_SYSTEMD, NATS_UNIT);
  const commands = unitValues(
    parseUnit(await readFile(file, "utf8"), file),
    "Service",
    "ExecReload",
  );
  if (commands.length === 0) throw new Error(`${file} has no ExecReload=`);
  const reloads = async () => (await readFile(node.logFile, "utf8")).split(RELOADED).length - 1;
  const before = await reloads();
  let hups = 0;
  for (const command of commands) {
    const [binary, ...args] = command.replaceAll("$MAINPID", String(node.pid)).split(/\s+/);
    if (binary === "/bin/kill" && args.includes("HUP")) hups++;
    await new Promise<void>((resolve, reject) => {
      execFile(binary as string, args, { timeout: 20_000 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`${command}: ${stderr || err.message}`));
        else resolve();
      });
    });
  }
  await waitFor(async () => (await reloads()) >= before + hups, {
    timeoutMs: 20_000,
    intervalMs: 100,
    message: `${node.name} did not log ${hups} reloads (log: ${node.logFile})`,
  });
}
