import { isIP, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { NatsClientSettings } from "./nats-config.js";

/**
 * Finds out why a TLS connection to a NATS server fails, when nats.js cannot say.
 *
 * When the server requires a client certificate and refuses ours (or gets none), TLS 1.3 lets the
 * client finish its handshake, and the server's alert arrives only with the first read. nats.js
 * then reports a bare connection timeout. This probe does what nats.js does (read INFO, upgrade
 * to TLS, send CONNECT and PING) and returns the TLS error it meets, or undefined when the TLS
 * part works (or the server cannot be reached at all).
 */
export async function probeNatsTls(
  server: string,
  tls: NonNullable<NatsClientSettings["tls"]>,
  timeoutMs = 5_000,
): Promise<Error | undefined> {
  const url = new URL(/^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 4222);
  return new Promise<Error | undefined>((resolve) => {
    let settled = false;
    let socket: Socket | undefined;
    const done = (result: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const plain = netConnect(port, host);
    socket = plain;
    plain.on("error", () => done(undefined));
    plain.once("data", (info) => {
      if (!/^INFO /.test(info.toString("utf8"))) return done(undefined);
      plain.removeAllListeners("data");
      const secure = tlsConnect({
        socket: plain,
        ...(isIP(host) ? {} : { servername: host }),
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: tls.key }),
      });
      socket = secure;
      secure.on("error", (error) => done(error));
      secure.on("secureConnect", () => {
        secure.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
      });
      // Any answer (PONG, or an -ERR about credentials) means TLS itself works.
      secure.on("data", () => done(undefined));
      secure.on("close", () => done(undefined));
    });
  });
}
