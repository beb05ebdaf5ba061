// Throwaway TLS material for tests that talk to dockerd (and later nats-server) over TLS: one CA,
// a server certificate for loopback and a client certificate, all made with the `openssl` CLI.
// ECDSA P-256 keys keep generation fast; certificates are valid for one day.

import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { findExecutable, run } from "./children.js";

export interface TlsMaterial {
  /** The directory everything was written to. */
  readonly dir: string;
  /** CA certificate (PEM file path). */
  readonly caCert: string;
  /** CA private key (PEM file path), to sign more certificates. */
  readonly caKey: string;
  /** Server certificate with SAN IP:127.0.0.1, DNS:localhost and extendedKeyUsage serverAuth. */
  readonly serverCert: string;
  readonly serverKey: string;
  /**
   * A directory laid out the way DOCKER_CERT_PATH expects: ca.pem (this CA), cert.pem and key.pem
   * (a client certificate with extendedKeyUsage clientAuth, signed by this CA).
   */
  readonly clientDir: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

const DAYS = "1";

/**
 * Creates a CA, a server certificate and a client certificate under `dir` (created if missing).
 * Each call makes a new, unrelated CA, so two calls give material that does not trust each other.
 */
export async function makeTlsMaterial(
  dir: string,
  opts: { commonName?: string } = {},
): Promise<TlsMaterial> {
  const openssl = await findExecutable("openssl", "install it with `apt-get install openssl`");
  const cn = opts.commonName ?? "fleetheal-test";
  const clientDir = path.join(dir, "client");
  await mkdir(clientDir, { recursive: true });
  const f = {
    caCert: path.join(dir, "ca.pem"),
    caKey: path.join(dir, "ca-key.pem"),
    serverCert: path.join(dir, "server-cert.pem"),
    serverKey: path.join(dir, "server-key.pem"),
    serverCsr: path.join(dir, "server.csr"),
    serverExt: path.join(dir, "server.ext"),
    clientCa: path.join(clientDir, "ca.pem"),
    clientCert: path.join(clientDir, "cert.pem"),
    clientKey: path.join(clientDir, "key.pem"),
    clientCsr: path.join(dir, "client.csr"),
    clientExt: path.join(dir, "client.ext"),
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  await run(openssl, [
    "req",
    "-x509",
    ...newKey,
    "-keyout",
    f.caKey,
    "-out",
    f.caCert,
    "-days",
    DAYS,
    "-subj",
    `/CN=${cn} CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);

  await writeFile(
    f.serverExt,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  await writeFile(
    f.clientExt,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=clientAuth",
      "",
    ].join("\n"),
  );

  const issue = async (
    key: string,
    csr: string,
    cert: string,
    ext: string,
    subject: string,
  ): Promise<void> => {
    await run(openssl, ["req", ...newKey, "-keyout", key, "-out", csr, "-subj", subject]);
    await run(openssl, [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      f.caCert,
      "-CAkey",
      f.caKey,
      "-set_serial",
      `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
      "-days",
      DAYS,
      "-extfile",
      ext,
      "-out",
      cert,
    ]);
  };
  await issue(f.serverKey, f.serverCsr, f.serverCert, f.serverExt, `/CN=${cn} server`);
  await issue(f.clientKey, f.clientCsr, f.clientCert, f.clientExt, `/CN=${cn} client`);
  await copyFile(f.caCert, f.clientCa);

  return {
    dir,
    caCert: f.caCert,
    caKey: f.caKey,
    serverCert: f.serverCert,
    serverKey: f.serverKey,
    clientDir,
    clientCert: f.clientCert,
    clientKey: f.clientKey,
  };
}
