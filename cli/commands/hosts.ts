import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError, FleethealError } from "../../common/errors.js";
import {
  readFleetAuthState,
  seedFile,
  writeFleetCredentials,
} from "../../common/fleet-credentials.js";
import { encodeJoinToken } from "../../common/join-token.js";
import { agentInboxPrefix, agentUser } from "../../common/nats-permissions.js";
import { HostId } from "../../contracts/index.js";
import type { HostCredential, HostSummary } from "../../gateway/http/api-schemas.js";
import { type OptionValues, UsageError } from "../args.js";
import { type CommandContext, defineCommand } from "../command.js";
import { upDataDirSetting } from "../data-dir.js";
import { EXIT } from "../exit-codes.js";
import { GatewayError } from "../gateway-error.js";
import { relativeTime, renderTable, shortDuration, type TableOptions } from "../table.js";
import {
  clientFor,
  GATEWAY_COMMAND,
  GATEWAY_OPTIONS,
  printJson,
  tableMode,
  tableOptions,
} from "./shared.js";

const OPTIONS = {
  "data-dir": {
    type: "string",
    value: "<dir>",
    description:
      "add/remove: the data directory of the fleetheal up that runs the fleet's NATS server, when on this machine [FLEETHEAL_DATA_DIR, or ./.fleetheal]",
  },
  "nats-auth": {
    type: "string",
    value: "<dir>",
    description:
      "add/remove: the credentials directory of `fleetheal nats-auth`, for a NATS deployment of your own",
  },
  url: {
    type: "string",
    value: "<urls>",
    description: "add with --nats-auth: the servers' URLs for the token, comma-separated",
  },
  ca: {
    type: "string",
    value: "<file>",
    description: "add with --nats-auth: the CA that signed the servers' certificates (PEM)",
  },
  ...tableOptions(
    "Print only the hosts' ids, one per line (with a credential and no report yet too)",
  ),
  ...GATEWAY_OPTIONS,
} as const;

/** `fleetheal hosts [add|remove <host>]`: the fleet's hosts, and adding or removing one. */
export const hosts = defineCommand({
  ...GATEWAY_COMMAND,
  name: "hosts",
  summary:
    "Every host: status, last seen, Docker, agent, containers by health, credential.\nadd <host-id> adds a host to the fleet that fleetheal up runs (prints its join token, for FLEETHEAL_JOIN_TOKEN on that host); remove <host-id> removes one (revokes its credential): next to up, through its gateway, or with --nats-auth for your own NATS.",
  usage: "fleetheal hosts [add <host-id> | remove <host-id>] [options]",
  description: `Every host from GET /hosts: its status (up, stale after missed heartbeats, down later),
when its agent was last heard from, Docker's state and version, the agent's version and
uptime, its containers by health, quarantined containers, the agent's outbox (events
waiting for a JetStream ack, and events it had to drop), and, in a fleet that fleetheal up
runs, its credential (issued, or connected).
add <host-id> issues a host's credential and prints one line, its join token (a secret:
give it only to that host, as FLEETHEAL_JOIN_TOKEN). remove <host-id> deletes the host's
snapshot and revokes its credential: its agent is disconnected. Both work next to fleetheal
up (its data directory), through the gateway of a fleetheal up (admin token, loopback or
TLS only), or on the credentials of a NATS deployment of your own (--nats-auth).`,
  options: OPTIONS,
  positionals: [
    { name: "add|remove", optional: true, description: "Add a host to the fleet, or remove one" },
    { name: "<host-id>", optional: true, description: "The host to add or remove" },
  ],
  notes: `Joining a host with its token is one command there:
  FLEETHEAL_JOIN_TOKEN=<token> fleetheal agent
  docker run -d --name fleetheal-agent --restart unless-stopped \\
    --group-add $(stat -c %g /var/run/docker.sock) -v /var/run/docker.sock:/var/run/docker.sock \\
    -v fleetheal-agent:/data -e FLEETHEAL_JOIN_TOKEN=<token> <image> agent`,
  async run({ options, positionals }, ctx) {
    const [action, id] = positionals;
    if (action === undefined) return list(options, ctx);
    if (action !== "add" && action !== "remove") {
      throw new UsageError(`unknown action ${JSON.stringify(action)}: add or remove`);
    }
    const parsed = HostId.safeParse(id ?? "");
    if (!parsed.success) {
      throw new UsageError("<host-id>: letters, digits, '_' and '-' (at most 128)");
    }
    const host = parsed.data;
    try {
      return await change(action, host, options, ctx);
    } catch (error) {
      // Up not running, a host with no credential: said as it is, not as an unexpected error.
      if (!(error instanceof FleethealError) || error instanceof ConfigError) throw error;
      ctx.io.err(error.message);
      return error instanceof GatewayError ? error.exitCode : EXIT.GATEWAY;
    }
  },
});

async function change(
  action: "add" | "remove",
  host: string,
  options: HostsOptions,
  ctx: CommandContext,
): Promise<number> {
  if (options["nats-auth"] !== undefined) return ownDeployment(action, host, options, ctx);
  const dataDir = resolve(ctx.cwd, options["data-dir"] ?? upDataDirSetting(ctx.env));
  const local = readFleetAuthState(`${dataDir}/credentials`) !== undefined;
  if (action === "add") {
    const added = local
      ? await (await import("../fleet-hosts.js")).addFleetHost(dataDir, host)
      : (await clientFor(options, ctx, { action: true }).addHost(host)).value;
    ctx.io.out(added.token);
    ctx.io.err(
      `${added.created ? "issued a credential for" : "host already had a credential:"} ${host}; join it with FLEETHEAL_JOIN_TOKEN=<the line above> fleetheal agent (fleetheal hosts --help)`,
    );
    return EXIT.OK;
  }
  const removed = local
    ? await (await import("../fleet-hosts.js")).removeFleetHost(
        dataDir,
        host,
        (await import("../embedded-nats-control.js")).readControlFile(dataDir)?.host,
      )
    : (await clientFor(options, ctx, { action: true }).removeHost(host)).value;
  ctx.io.out(
    `removed ${host}: its credential is revoked${removed.snapshotDeleted ? " and its snapshot deleted" : ""}`,
  );
  return EXIT.OK;
}

type HostsOptions = OptionValues<typeof OPTIONS>;

async function list(options: HostsOptions, ctx: CommandContext): Promise<number> {
  const mode = tableMode(options);
  const client = clientFor(options, ctx, { action: false });
  const { value, json } = await client.hosts();
  if (mode === "json") {
    printJson(ctx, json);
    return EXIT.OK;
  }
  if (mode === "quiet") {
    const ids = new Set([
      ...value.hosts.map((h) => h.id),
      ...(value.credentials ?? []).map((c) => c.host),
    ]);
    for (const id of ids) ctx.io.out(id);
    return EXIT.OK;
  }
  if (value.hosts.length === 0 && !value.credentials?.length) {
    // On stderr without headers: a script reads an empty stdout.
    if (mode.headers) ctx.io.out("no hosts have reported yet");
    else ctx.io.err("no hosts have reported yet");
    return EXIT.OK;
  }
  for (const line of renderHosts(value.hosts, ctx.now(), value.credentials, mode)) {
    ctx.io.out(line);
  }
  return EXIT.OK;
}

/**
 * A NATS deployment of the operator's own: the credentials of `nats-auth`'s directory change, and
 * the operator reloads the servers (the command says which file and how).
 */
function ownDeployment(
  action: "add" | "remove",
  host: string,
  options: { "nats-auth"?: string; url?: string; ca?: string },
  ctx: CommandContext,
): number {
  const dir = resolve(ctx.cwd, options["nats-auth"] as string);
  if (action === "remove") {
    writeFleetCredentials(dir, { removeHosts: [host] });
    ctx.io.out(`removed ${host} from ${dir}`);
    ctx.io.err(reloadHint(dir));
    return EXIT.OK;
  }
  const urls = (options.url ?? "").split(",").filter((u) => u.trim() !== "");
  if (urls.length === 0) {
    throw new UsageError("--url: the NATS servers' URLs (tls://<host>:<port>), for the token");
  }
  if (options.ca === undefined) {
    throw new UsageError("--ca: the CA certificate (PEM) of the NATS servers, for the token");
  }
  const credentials = writeFleetCredentials(dir, { addHosts: [host] });
  const state = readFleetAuthState(dir) ?? credentials.state;
  ctx.io.out(
    encodeJoinToken({
      v: 1,
      host,
      urls: urls.map((u) => u.trim()),
      ca: readFileSync(resolve(ctx.cwd, options.ca), "utf8"),
      seed: readFileSync(seedFile(dir, agentUser(host)), "utf8").trim(),
      inboxPrefix: agentInboxPrefix(host),
      commandKeys: [state.signing.handler, state.signing.gateway],
    }),
  );
  ctx.io.err(reloadHint(dir));
  return EXIT.OK;
}

const reloadHint = (dir: string) =>
  `copy ${dir}/fleetheal-auth.conf to every NATS server and reload each one twice (nats-server --signal reload, or systemctl reload nats-server@N, which does): on nats-server 2.9 an added account gets its imports on the second reload; no other host is touched`;

export function renderHosts(
  list: readonly HostSummary[],
  now: number,
  credentials?: readonly HostCredential[],
  options: TableOptions = {},
): string[] {
  const credentialOf = new Map(credentials?.map((c) => [c.host, c.state]));
  const reported = new Set(list.map((h) => h.id));
  const rows = renderTable<HostSummary>(
    [
      { header: "HOST", value: (h) => h.id },
      { header: "STATUS", value: (h) => h.status },
      { header: "LAST SEEN", value: (h) => relativeTime(h.lastSeen, now) },
      {
        header: "DOCKER",
        value: (h) => (h.docker.status === "up" ? `up ${h.docker.version ?? ""}`.trim() : "down"),
      },
      { header: "AGENT", value: (h) => h.agent.version },
      { header: "UPTIME", value: (h) => shortDuration(h.agent.uptimeSeconds * 1000) },
      { header: "CONTAINERS", value: (h) => String(h.containers.total), align: "right" },
      { header: "HEALTHY", value: (h) => String(h.containers.healthy), align: "right" },
      { header: "UNHEALTHY", value: (h) => String(h.containers.unhealthy), align: "right" },
      { header: "QUARANTINED", value: (h) => String(h.quarantined), align: "right" },
      {
        header: "OUTBOX",
        value: (h) =>
          `${h.outbox.depth}/${h.outbox.capacity}${h.outbox.dropped > 0 ? ` (${h.outbox.dropped} dropped)` : ""}`,
        align: "right",
      },
      ...(credentials
        ? [{ header: "CREDENTIAL", value: (h: HostSummary) => credentialOf.get(h.id) ?? "none" }]
        : []),
    ],
    list,
    options,
  );
  const waiting = (credentials ?? []).filter((c) => !reported.has(c.host));
  return [
    ...(list.length > 0 ? rows : []),
    ...waiting.map((c) => `${c.host}: credential ${c.state}, has not reported yet`),
  ];
}
