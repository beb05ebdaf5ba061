import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { natsAuthCommand } from "../cli/nats-auth.js";
import {
  AUTH_FILE,
  FleetCredentialsError,
  publicKeyOfSeedFile,
  readFleetAuthState,
  STATE_FILE,
  seedFile,
  signingSeedFile,
  writeFleetCredentials,
} from "./fleet-credentials.js";

const root = mkdtempSync(join(tmpdir(), "fleetheal-credentials-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const mode = (f: string) => statSync(f).mode & 0o777;
const envOf = (dir: string, user: string) => readFileSync(join(dir, `${user}.env`), "utf8");

describe("writeFleetCredentials", () => {
  it("issues an NKEY per user and a signing key per signer, seeds readable by the owner only", () => {
    const dir = fresh();
    const result = writeFleetCredentials(dir, { addHosts: ["a", "b"] });
    expect(mode(dir)).toBe(0o700);
    expect(result.created).toEqual(["agent-a", "agent-b", "handler", "gateway", "reader"]);
    const conf = readFileSync(join(dir, AUTH_FILE), "utf8");
    for (const user of result.created) {
      expect(mode(seedFile(dir, user))).toBe(0o600);
      expect(readFileSync(seedFile(dir, user), "utf8")).toMatch(/^SU[A-Z2-7]{56}\n$/);
      expect(conf).toContain(`nkey: "${publicKeyOfSeedFile(seedFile(dir, user))}"`);
      expect(envOf(dir, user)).toContain(`FLEETHEAL_NATS_NKEY_FILE=${seedFile(dir, user)}`);
    }
    expect(conf).not.toMatch(/SU[A-Z2-7]{56}|password/);
    for (const role of ["handler", "gateway"] as const) {
      expect(mode(signingSeedFile(dir, role))).toBe(0o600);
      expect(readFileSync(signingSeedFile(dir, role), "utf8")).toMatch(/^SO[A-Z2-7]{56}\n$/);
      expect(envOf(dir, role)).toContain(
        `FLEETHEAL_COMMAND_SIGNING_KEY_FILE=${signingSeedFile(dir, role)}`,
      );
    }
    const { signing } = result.state;
    expect(envOf(dir, "agent-a")).toContain(
      `FLEETHEAL_COMMAND_KEYS=${signing.handler},${signing.gateway}`,
    );
    expect(envOf(dir, "agent-a")).toContain("FLEETHEAL_HOST_ID=a");
    expect(envOf(dir, "reader")).not.toContain("FLEETHEAL_COMMAND");
    expect(readFleetAuthState(dir)).toEqual(result.state);
    expect(mode(join(dir, STATE_FILE))).toBe(0o600);
  });

  it("adds a host without touching any other key, and removes one", () => {
    const dir = fresh();
    const first = writeFleetCredentials(dir, { addHosts: ["a"] });
    const seedA = readFileSync(seedFile(dir, "agent-a"), "utf8");
    const second = writeFleetCredentials(dir, { addHosts: ["b"] });
    expect(second.created).toEqual(["agent-b"]);
    expect(readFileSync(seedFile(dir, "agent-a"), "utf8")).toBe(seedA);
    expect(second.state).toEqual({
      ...first.state,
      agents: { ...first.state.agents, b: second.state.agents.b },
    });
    const third = writeFleetCredentials(dir, { removeHosts: ["a"] });
    expect(third.removed).toEqual(["a"]);
    expect(Object.keys(third.state.agents)).toEqual(["b"]);
    expect(existsSync(seedFile(dir, "agent-a"))).toBe(false);
    expect(readFileSync(join(dir, AUTH_FILE), "utf8")).not.toContain("HOST_a");
  });

  it("issues everything anew with force", () => {
    const dir = fresh();
    const first = writeFleetCredentials(dir, { addHosts: ["a"] });
    const again = writeFleetCredentials(dir, { addHosts: ["a"], force: true });
    expect(again.state.handler).not.toBe(first.state.handler);
    expect(again.state.signing.handler).not.toBe(first.state.signing.handler);
  });

  it("refuses an older password layout, an unknown host to remove and a bad state file", () => {
    const old = fresh();
    writeFleetCredentials(old, { addHosts: ["a"] });
    rmSync(join(old, STATE_FILE));
    expect(() => writeFleetCredentials(old, { addHosts: ["a"] })).toThrow(/older fleetheal/);
    const dir = fresh();
    writeFleetCredentials(dir, { addHosts: ["a"] });
    expect(() => writeFleetCredentials(dir, { removeHosts: ["zz"] })).toThrow(
      FleetCredentialsError,
    );
    writeFileSync(join(dir, STATE_FILE), '{"v":1}');
    expect(() => readFleetAuthState(dir)).toThrow(/not a fleetheal credentials state file/);
  });
});

describe("fleetheal nats-auth", () => {
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await natsAuthCommand(args, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    return { code, out, err };
  };

  it("writes the credentials, then adds a host keeping the others", async () => {
    const out = fresh();
    const first = await run(["--hosts", "a, b", "--out", out]);
    expect(first.code).toBe(0);
    expect(first.out.join("\n")).toMatch(/agent-a +agent +new/);
    const again = await run(["--hosts", "c", "--out", out]);
    expect(again.code).toBe(0);
    expect(again.out.join("\n")).toMatch(/agent-a +agent +kept/);
    expect(again.out.join("\n")).toMatch(/agent-c +agent +new/);
    const removed = await run(["--remove", "a", "--out", out]);
    expect(removed.code).toBe(0);
    expect(removed.out.join("\n")).toMatch(/removed host a/);
  });

  it("refuses missing or bad hosts and unknown options with exit code 2", async () => {
    expect((await run([])).err.join()).toMatch(/--hosts is required/);
    expect((await run(["--hosts", "a.b", "--out", fresh()])).code).toBe(2);
    expect((await run(["--hosts", "a", "--bogus"])).code).toBe(2);
    expect((await run(["--remove", "nope", "--out", fresh()])).code).toBe(2);
  });

  it("writes a server certificate signed by a CA it keeps, or by the CA it is given", async () => {
    const out = fresh();
    const first = await run(["--tls-names", "nats-1.example,10.0.0.1", "--out", out]);
    expect(first.code).toBe(0);
    const ca = readFileSync(join(out, "tls", "ca.pem"), "utf8");
    const server = new X509Certificate(
      readFileSync(join(out, "tls", "nats-1.example", "server-cert.pem")),
    );
    expect(server.checkIP("10.0.0.1")).toBe("10.0.0.1");
    expect(server.verify(new X509Certificate(ca).publicKey)).toBe(true);
    const other = fresh();
    expect(
      (await run(["--tls-names", "nats-2.example", "--out", other, "--ca-dir", join(out, "tls")]))
        .code,
    ).toBe(0);
    const second = new X509Certificate(
      readFileSync(join(other, "tls", "nats-2.example", "server-cert.pem")),
    );
    expect(second.verify(new X509Certificate(ca).publicKey)).toBe(true);
    expect((await run(["--tls-names", "", "--out", fresh()])).code).toBe(2);
  });
});
