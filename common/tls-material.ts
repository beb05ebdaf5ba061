// The CA and server certificate of the embedded nats-server when other hosts connect to it
// (`fleetheal up` with FLEETHEAL_NATS_LISTEN). Made with @peculiar/x509 over WebCrypto, because
// the image has no openssl: a CA made once and kept (join tokens carry it, so agents that joined
// keep trusting the server), and a server certificate for the names agents dial, made again when
// the names change or it nears its end.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(globalThis.crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** How long a server certificate is made for, and how long before its end it is made again. */
const SERVER_DAYS = 397;
const RENEW_BEFORE_DAYS = 30;
const CA_DAYS = 20 * 365;

/** Where the material lives, and the CA's PEM for join tokens. */
export interface TlsMaterial {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate itself (PEM), as join tokens carry it. */
  caPem: string;
  /** Whether the server certificate was made now (the server must load it). */
  renewed: boolean;
}

/** The names a certificate is for: DNS names and IP addresses. */
export function certificateNames(names: readonly string[]): string[] {
  return [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ""))].sort();
}

const pem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${(
    Buffer.from(der)
      .toString("base64")
      .match(/.{1,64}/g) ?? []
  ).join("\n")}\n-----END ${label}-----\n`;

function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function importPrivateKey(pemText: string): Promise<CryptoKey> {
  const der = Buffer.from(pemText.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
  return (await webcrypto.subtle.importKey("pkcs8", der, ALGORITHM, true, ["sign"])) as CryptoKey;
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex");

/** The CA of `dir`, made on first use and kept. */
async function ensureCa(dir: string): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const caFile = join(dir, "ca.pem");
  const caKeyFile = join(dir, "ca-key.pem");
  if (existsSync(caFile) && existsSync(caKeyFile)) {
    return {
      cert: new x509.X509Certificate(readFileSync(caFile, "utf8")),
      key: await importPrivateKey(readFileSync(caKeyFile, "utf8")),
    };
  }
  const keys = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=fleetheal NATS CA",
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writePrivate(
    caKeyFile,
    pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)),
  );
  writeFileSync(caFile, `${cert.toString("pem")}\n`, { mode: 0o644 });
  return { cert, key: keys.privateKey };
}

/** The names a server certificate is for, from its subject alternative names. */
function namesOf(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return certificateNames((san?.names.items ?? []).map((n) => n.value));
}

/**
 * The CA and a server certificate for `names` in `dir` (mode 0700): the CA is made once and
 * kept; the server certificate is made again when it is missing, not for exactly these names, or
 * within 30 days of its end.
 */
export async function ensureTlsMaterial(
  dir: string,
  names: readonly string[],
  now = Date.now(),
): Promise<TlsMaterial> {
  return ensureServerCertificate(dir, dir, names, now);
}

/**
 * A server certificate for `names` in `outDir`, signed by the CA of `caDir` (made there if it has
 * none): the certificates of a NATS cluster's nodes, signed by the CA that `fleetheal up` made,
 * so that agents that joined it keep trusting the servers after a move to the cluster.
 */
export async function ensureServerCertificate(
  caDir: string,
  outDir: string,
  names: readonly string[],
  now = Date.now(),
): Promise<TlsMaterial> {
  for (const dir of new Set([caDir, outDir])) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const dir = caDir;
  const ca = await ensureCa(dir);
  const certFile = join(outDir, "server-cert.pem");
  const keyFile = join(outDir, "server-key.pem");
  const wanted = certificateNames(names);
  if (existsSync(certFile) && existsSync(keyFile)) {
    const current = new x509.X509Certificate(readFileSync(certFile, "utf8"));
    const fresh = current.notAfter.getTime() - now > RENEW_BEFORE_DAYS * DAY_MS;
    const signedByCa = current.issuer === ca.cert.subject;
    if (fresh && signedByCa && namesOf(current).join(",") === wanted.join(",")) {
      return { ...paths(dir, certFile, keyFile), caPem: caPemOf(dir), renewed: false };
    }
  }
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=fleetheal NATS",
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + SERVER_DAYS * DAY_MS),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        wanted.map((value) => ({ type: isIP(value) ? "ip" : "dns", value })),
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  writePrivate(
    keyFile,
    pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)),
  );
  writeFileSync(certFile, `${cert.toString("pem")}\n`, { mode: 0o644 });
  return { ...paths(dir, certFile, keyFile), caPem: caPemOf(dir), renewed: true };
}

const caPemOf = (dir: string) => readFileSync(join(dir, "ca.pem"), "utf8");

function paths(dir: string, certFile: string, keyFile: string) {
  return { caFile: join(dir, "ca.pem"), certFile, keyFile };
}
