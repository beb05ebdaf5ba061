// The hosts of a fleet whose first host runs `fleetheal up`: adding one issues its credential and
// prints a join token, removing one revokes it. Both work on up's data directory, and reload the
// running embedded server so that no other host's connection drops.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders, nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describeError, FleethealError } from "../common/errors.js";
import {
  readFleetAuthState,
  seedFile,
  writeFleetCredentials,
} from "../common/fleet-credentials.js";
import { encodeJoinToken } from "../common/join-token.js";
import { hostAccount } from "../common/nats-accounts.js";
import { agentInboxPrefix, agentUser, gatewayPermissions } from "../common/nats-permissions.js";
import { HOSTS_BUCKET } from "../contracts/index.js";
import type { FleetHostsAdmin } from "../gateway/nats/ports.js";
import {
  connectedAccounts,
  type EmbeddedNatsControl,
  readControlFile,
  reloadEmbeddedNats,
} from "./embedded-nats-control.js";

/**
 * A host could not be added or removed; the message says why and what to do. `statusCode` is
 * what the gateway answers with it: 404 for a host with no credential, 409 otherwise.
 */
export class FleetHostsError extends FleethealError {
  override readonly name = "FleetHostsError";
  constructor(
    message: string,
    readonly statusCode: 404 | 409 = 409,
    options?: { cause?: unknown },
  ) {
    super("FLEETHEAL_ERR_FLEET_HOSTS", message, options);
  }
}

/** The credentials directory of `up`'s data directory. */
export const upCredentialsDir = (dataDir: string) => join(dataDir, "credentials");

/** Whether `dataDir` belongs to a `fleetheal up` (it holds its credentials). */
export function isUpDataDir(dataDir: string): boolean {
  return readFleetAuthState(upCredentialsDir(dataDir)) !== undefined;
}

function running(dataDir: string): EmbeddedNatsControl {
  const control = readControlFile(dataDir);
  if (!control) {
    throw new FleetHostsError(
      `no fleetheal up is running with the data directory ${dataDir}; start it (with FLEETHEAL_NATS_LISTEN, so that other hosts can reach it) and run this again`,
    );
  }
  return control;
}

/** What `addFleetHost` did. */
export interface AddedHost {
  host: string;
  /** The join token: a secret, for `FLEETHEAL_JOIN_TOKEN` on the new host. */
  token: string;
  /** False when the host had a credential already: the token is the same one again. */
  created: boolean;
}

/**
 * Issues `host`'s credential (keeping every other key), has the running embedded server load it,
 * and returns its join token. A host that has one already gets the same token again.
 */
export async function addFleetHost(dataDir: string, host: string): Promise<AddedHost> {
  const control = running(dataDir);
  if (control.advertise.length === 0 || !control.caFile) {
    throw new FleetHostsError(
      "fleetheal up listens on loopback only: start it with FLEETHEAL_NATS_LISTEN=<address>:<port> (and FLEETHEAL_NATS_ADVERTISE if other hosts reach it under another name) so that other hosts can join",
    );
  }
  const dir = upCredentialsDir(dataDir);
  let credentials: ReturnType<typeof writeFleetCredentials>;
  try {
    credentials = writeFleetCredentials(dir, { addHosts: [host] });
  } catch (error) {
    throw new FleetHostsError(
      `cannot add host ${JSON.stringify(host)}: ${describeError(error)}`,
      409,
      { cause: error },
    );
  }
  const created = credentials.created.includes(agentUser(host));
  if (created) await reloadEmbeddedNats(control, dataDir);
  const token = encodeJoinToken({
    v: 1,
    host,
    urls: control.advertise,
    ca: readFileSync(control.caFile, "utf8"),
    seed: readFileSync(seedFile(dir, agentUser(host)), "utf8").trim(),
    inboxPrefix: agentInboxPrefix(host),
    commandKeys: [credentials.state.signing.handler, credentials.state.signing.gateway],
  });
  return { host, token, created };
}

/**
 * Removes `host`: its credential is revoked in the same reload that drops the fleet's import of
 * its commands (its agent is disconnected and its token no longer connects), then its snapshot is
 * deleted, by the gateway's key: deleted before, it would come back with the agent's next
 * heartbeat.
 */
export async function removeFleetHost(
  dataDir: string,
  host: string,
  ownHost: string | undefined,
): Promise<{ host: string; snapshotDeleted: boolean }> {
  if (host === ownHost) {
    throw new FleetHostsError(`host ${host} is fleetheal up's own host; it cannot be removed`);
  }
  const control = running(dataDir);
  const dir = upCredentialsDir(dataDir);
  if (!readFleetAuthState(dir)?.agents[host]) {
    throw new FleetHostsError(`host ${JSON.stringify(host)} has no credential in this fleet`, 404);
  }
  writeFleetCredentials(dir, { removeHosts: [host] });
  await reloadEmbeddedNats(control, dataDir);
  await deleteSnapshot(control, dir, host);
  return { host, snapshotDeleted: true };
}

/** Deletes `host`'s snapshot as the gateway, the one control-plane user that may. */
async function deleteSnapshot(
  control: EmbeddedNatsControl,
  dir: string,
  host: string,
): Promise<void> {
  const gateway = gatewayPermissions();
  const seed = readFileSync(seedFile(dir, gateway.user), "utf8").trim();
  const nc = await connect({
    servers: control.url,
    name: `fleetheal-hosts-remove-${host}`,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    inboxPrefix: gateway.inboxPrefix,
    ...(control.caFile ? { tls: { ca: readFileSync(control.caFile, "utf8") } } : {}),
    reconnect: false,
    timeout: 5_000,
  });
  try {
    const h = natsHeaders();
    h.set("KV-Operation", "DEL");
    await jetstream(nc).publish(`$KV.${HOSTS_BUCKET}.${host}`, undefined, {
      headers: h,
      timeout: 5_000,
    });
  } finally {
    await nc.close();
  }
}

/** A host's credential: issued, or in use by a connection now. */
export interface HostCredential {
  host: string;
  state: "issued" | "connected";
}

/** Every host with a credential in `up`'s data directory, and whether it is connected. */
export async function listFleetCredentials(dataDir: string): Promise<HostCredential[]> {
  const state = readFleetAuthState(upCredentialsDir(dataDir));
  if (!state) return [];
  const control = readControlFile(dataDir);
  const connected = control ? await connectedAccounts(control, dataDir) : new Set<string>();
  return Object.keys(state.agents)
    .sort()
    .map((host) => ({
      host,
      state: connected.has(hostAccount(host)) ? "connected" : "issued",
    }));
}

/** The hosts of `up`'s fleet, for its gateway's routes. */
export function upHostsAdmin(dataDir: string, ownHost: string): FleetHostsAdmin {
  return {
    add: (host) => addFleetHost(dataDir, host),
    remove: (host) => removeFleetHost(dataDir, host, ownHost),
    credentials: () => listFleetCredentials(dataDir),
  };
}
