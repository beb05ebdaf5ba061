// The NATS server of `fleetheal up`: the accounts of a deployed fleet, credentials kept in the
// data directory, and, with FLEETHEAL_NATS_LISTEN, a TLS listener that the agents of other hosts
// join (`fleetheal hosts add` issues their tokens).

import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { ConfigError } from "../common/errors.js";
import {
  AUTH_FILE,
  type FleetCredentials,
  seedFile,
  writeFleetCredentials,
} from "../common/fleet-credentials.js";
import type { Logger } from "../common/logger.js";
import { type NatsClientSettings, readUserSeed } from "../common/nats-config.js";
import type { FleetNatsUser } from "../common/nats-permissions.js";
import { ensureTlsMaterial } from "../common/tls-material.js";
import { type EmbeddedNats, startEmbeddedNats } from "./embedded-nats.js";
import { upCredentialsDir } from "./fleet-hosts.js";

/** Where the embedded server listens, and what other hosts dial. */
export interface UpListen {
  port: number;
  /** FLEETHEAL_NATS_LISTEN: an address other hosts reach, with TLS. */
  listen?: { host: string; port: number };
  /** FLEETHEAL_NATS_ADVERTISE: what join tokens name instead of the listen address. */
  advertise?: { host: string; port: number }[];
}

/** The running server, and how each of up's roles connects to it. */
export interface UpServer extends EmbeddedNats {
  credentials: FleetCredentials;
  /** The settings of `user`: its NKEY, its inbox prefix, and the CA when the server has TLS. */
  settingsFor(user: FleetNatsUser): NatsClientSettings;
}

/** `host:port`, checked; `what` names the variable in the error. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\s\]]*)\]?:(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m?.[1] || port < 1 || port > 65_535) {
    throw new ConfigError(
      `invalid configuration:\n  ${what}=${JSON.stringify(text)}: must be <address>:<port>, e.g. 0.0.0.0:4222`,
    );
  }
  return { host: m[1], port };
}

/** The addresses other hosts dial: the advertised ones, else the listen address or this host's. */
export function advertisedUrls(listen: UpListen): string[] {
  if (!listen.listen) return [];
  const targets =
    listen.advertise && listen.advertise.length > 0
      ? listen.advertise
      : isWildcard(listen.listen.host)
        ? externalAddresses().map((host) => ({
            host,
            port: (listen.listen as { port: number }).port,
          }))
        : [listen.listen];
  return targets.map(
    ({ host, port }) => `tls://${host.includes(":") ? `[${host}]` : host}:${port}`,
  );
}

const isWildcard = (host: string) => host === "0.0.0.0" || host === "::";

/** This machine's IPv4 addresses other than loopback. */
function externalAddresses(): string[] {
  const found = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === "IPv4" && !a.internal)
    .map((a) => a?.address as string);
  return found.length > 0 ? found : [hostname()];
}

/**
 * Starts up's nats-server. Its credentials (`<data dir>/credentials`, as `fleetheal nats-auth`
 * writes them) get `hostId`'s agent if it has none; every other key is kept. With a listener for
 * other hosts, a CA and a server certificate are made in `<data dir>/tls` on first start and kept.
 */
export async function startUpServer(options: {
  binary: string;
  dataDir: string;
  hostId: string;
  listen: UpListen;
  log: Logger;
}): Promise<UpServer> {
  const { dataDir, listen } = options;
  const credentials = writeFleetCredentials(upCredentialsDir(dataDir), {
    addHosts: [options.hostId],
  });
  const advertise = advertisedUrls(listen);
  const tls = listen.listen
    ? await ensureTlsMaterial(join(dataDir, "tls"), [
        "127.0.0.1",
        "localhost",
        hostname(),
        ...(isWildcard(listen.listen.host) ? [] : [listen.listen.host]),
        ...advertise.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, "")),
      ])
    : undefined;
  const server = await startEmbeddedNats({
    binary: options.binary,
    dataDir,
    listen: listen.listen ?? { host: "127.0.0.1", port: listen.port },
    ...(tls ? { tls: { certFile: tls.certFile, keyFile: tls.keyFile, caFile: tls.caFile } } : {}),
    advertise,
    host: options.hostId,
    accountsFile: join(credentials.dir, AUTH_FILE),
    log: options.log,
  });
  const ca = tls?.caPem;
  return {
    ...server,
    credentials,
    settingsFor(user) {
      const file = seedFile(credentials.dir, user.user);
      const seed = readUserSeed(readFileSync(file));
      if (seed === undefined || typeof seed === "string") {
        throw new ConfigError(`${file}: ${seed ?? "missing"}`);
      }
      return {
        auth: { method: "nkey", user: user.user },
        authenticator: nkeyAuthenticator(seed.seed),
        inboxPrefix: user.inboxPrefix,
        jsReplicas: 1,
        ...(ca ? { tls: { ca } } : {}),
      };
    },
  };
}
