import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { certificateNames, ensureTlsMaterial } from "./tls-material.js";

const root = mkdtempSync(join(tmpdir(), "fleetheal-tls-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);

describe("ensureTlsMaterial", () => {
  it("makes a CA and a server certificate for the names, signed by it, keys owner-only", async () => {
    const dir = fresh();
    const m = await ensureTlsMaterial(dir, ["nats.example", "10.0.0.5", "127.0.0.1"]);
    expect(m.renewed).toBe(true);
    const ca = new X509Certificate(readFileSync(m.caFile));
    const server = new X509Certificate(readFileSync(m.certFile));
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost("nats.example")).toBe("nats.example");
    expect(server.checkIP("10.0.0.5")).toBe("10.0.0.5");
    expect(server.checkHost("other.example")).toBeUndefined();
    expect(statSync(m.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "ca-key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(m.caPem).toBe(ca.toString());
  });

  it("keeps the CA and the certificate while the names are the same; new names, new certificate", async () => {
    const dir = fresh();
    const first = await ensureTlsMaterial(dir, ["a.example", "127.0.0.1"]);
    const same = await ensureTlsMaterial(dir, ["127.0.0.1", "A.example"]);
    expect(same.renewed).toBe(false);
    const again = await ensureTlsMaterial(dir, ["a.example", "b.example"]);
    expect(again.renewed).toBe(true);
    expect(again.caPem).toBe(first.caPem);
    const server = new X509Certificate(readFileSync(again.certFile));
    expect(server.checkHost("b.example")).toBe("b.example");
    expect(server.verify(new X509Certificate(first.caPem).publicKey)).toBe(true);
  });

  it("makes the certificate again near its end", async () => {
    const dir = fresh();
    await ensureTlsMaterial(dir, ["a.example"]);
    const later = Date.now() + 380 * 86_400_000;
    expect((await ensureTlsMaterial(dir, ["a.example"], later)).renewed).toBe(true);
  });
});

describe("certificateNames", () => {
  it("trims, lower-cases, drops empties and repeats, and sorts", () => {
    expect(certificateNames([" B.example", "a.example", "", "b.example"])).toEqual([
      "a.example",
      "b.example",
    ]);
  });
});
