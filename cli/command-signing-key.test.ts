import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
  loadCommandSigningKey,
} from "../common/command-signing.js";
import { UP_SIGNING_KEY_FILE, upCommandSigningEnv } from "./command-signing-key.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "fleetheal-up-key-"));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("upCommandSigningEnv", () => {
  it("makes an operator key in the data dir once (0600 in 0700), and the agent trusts it", () => {
    const dataDir = join(tempDir(), "data");
    const env = upCommandSigningEnv(dataDir, {});
    const file = join(dataDir, UP_SIGNING_KEY_FILE);
    expect(env.FLEETHEAL_COMMAND_SIGNING_KEY_FILE).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const seed = readFileSync(file, "utf8");
    expect(seed).toMatch(/^SO[A-Z2-7]{56}\n$/);
    expect(env.FLEETHEAL_COMMAND_KEYS).toBe(commandSigningKeyFromSeed(seed).publicKey);
    // The next start keeps it.
    expect(upCommandSigningEnv(dataDir, {})).toEqual(env);
    expect(readFileSync(file, "utf8")).toBe(seed);
  });

  it("replaces a key file that holds no seed, owner-only", () => {
    const dataDir = tempDir();
    const file = join(dataDir, UP_SIGNING_KEY_FILE);
    writeFileSync(file, "garbage\n", { mode: 0o644 });
    const env = upCommandSigningEnv(dataDir, {});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(env.FLEETHEAL_COMMAND_KEYS).toBe(loadCommandSigningKey(file).publicKey);
  });

  it("uses the operator's own key file, and trusts it besides the keys already given", () => {
    const dataDir = tempDir();
    const own = join(dataDir, "mine.nk");
    const seed = generateCommandSigningSeed();
    writeFileSync(own, `${seed}\n`, { mode: 0o600 });
    const other = commandSigningKeyFromSeed(generateCommandSigningSeed()).publicKey;
    const mine = commandSigningKeyFromSeed(seed).publicKey;
    expect(
      upCommandSigningEnv(dataDir, {
        FLEETHEAL_COMMAND_SIGNING_KEY_FILE: own,
        FLEETHEAL_COMMAND_KEYS: `${other}, ${mine}`,
      }),
    ).toEqual({
      FLEETHEAL_COMMAND_SIGNING_KEY_FILE: own,
      FLEETHEAL_COMMAND_KEYS: `${other},${mine}`,
    });
  });

  it("leaves a bad key file of the operator's for the handler's configuration to report", () => {
    const dataDir = tempDir();
    const own = join(dataDir, "bad.nk");
    writeFileSync(own, "nope\n");
    expect(upCommandSigningEnv(dataDir, { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: own })).toEqual({
      FLEETHEAL_COMMAND_SIGNING_KEY_FILE: own,
    });
  });
});
