import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../common/errors.js";
import { resolveTarget } from "./gateway-config.js";

let dir: string;
const TOKEN = "t0ken-from-a-file-0123456789";
const UP_TOKEN = "the-token-fleetheal-up-wrote-0123";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleetheal-cli-"));
  await writeFile(join(dir, "token"), `${TOKEN}\n`);
  await writeFile(join(dir, "empty"), "\n");
  await writeFile(join(dir, "spaced"), "two words\n");
  await mkdir(join(dir, ".fleetheal"));
  await writeFile(join(dir, ".fleetheal", "admin-token"), `${UP_TOKEN}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const read = { action: false, cwd: "/nonexistent" };

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("no configuration error");
}

describe("resolveTarget", () => {
  it("takes the URL from --gateway, then FLEETHEAL_GATEWAY_URL, then the local default", () => {
    const env = { FLEETHEAL_GATEWAY_URL: "https://gw.example:8443/fleetheal/" };
    expect(resolveTarget({ gateway: "http://a:1" }, env, read).url).toBe("http://a:1");
    expect(resolveTarget({}, env, read).url).toBe("https://gw.example:8443/fleetheal");
    expect(resolveTarget({}, {}, read)).toEqual({ url: "http://127.0.0.1:8080" });
  });

  it("rejects URLs the client cannot use, naming where they came from", () => {
    expect(configError(() => resolveTarget({ gateway: "localhost:8080" }, {}, read))).toMatch(
      /^--gateway: the gateway URL must be http/,
    );
    expect(configError(() => resolveTarget({}, { FLEETHEAL_GATEWAY_URL: "nope" }, read))).toBe(
      'FLEETHEAL_GATEWAY_URL: "nope" is not a URL (http://host:8080)',
    );
    expect(configError(() => resolveTarget({ gateway: "http://u:p@gw" }, {}, read))).toMatch(
      /not in the URL/,
    );
  });

  it("takes the token from --token-file, then the variable, then the variable's file", () => {
    const file = join(dir, "token");
    const env = { FLEETHEAL_GATEWAY_TOKEN: "from-the-env-0123456789" };
    expect(resolveTarget({ "token-file": file }, env, read).token).toBe(TOKEN);
    expect(resolveTarget({}, env, read).token).toBe("from-the-env-0123456789");
    expect(resolveTarget({}, { FLEETHEAL_GATEWAY_TOKEN_FILE: file }, read).token).toBe(TOKEN);
    expect(
      configError(() => resolveTarget({}, { ...env, FLEETHEAL_GATEWAY_TOKEN_FILE: file }, read)),
    ).toMatch(/both set: set only one/);
  });

  it("reports unusable token files without printing the token", () => {
    expect(
      configError(() => resolveTarget({ "token-file": join(dir, "missing") }, {}, read)),
    ).toMatch(/^--token-file: cannot read .*missing: ENOENT/);
    expect(
      configError(() => resolveTarget({ "token-file": join(dir, "empty") }, {}, read)),
    ).toMatch(/the token is empty$/);
    const spaced = configError(() =>
      resolveTarget({ "token-file": join(dir, "spaced") }, {}, read),
    );
    expect(spaced).toMatch(/the token \(9 characters\) must be printable ASCII without spaces/);
    expect(spaced).not.toContain("two words");
  });

  it("falls back to the token `fleetheal up` wrote for actions only", () => {
    expect(resolveTarget({}, {}, { action: false, cwd: dir }).token).toBeUndefined();
    expect(resolveTarget({}, {}, { action: true, cwd: dir })).toEqual({
      url: "http://127.0.0.1:8080",
      token: UP_TOKEN,
      tokenSource: join(dir, ".fleetheal", "admin-token"),
    });
    expect(
      configError(() =>
        resolveTarget({}, { FLEETHEAL_DATA_DIR: "elsewhere" }, { action: true, cwd: dir }),
      ),
    ).toMatch(/needs the gateway's admin token: .* elsewhere\/admin-token$/);
  });

  it("takes an empty FLEETHEAL_DATA_DIR as unset, as `fleetheal up` does", () => {
    expect(resolveTarget({}, { FLEETHEAL_DATA_DIR: "" }, { action: true, cwd: dir })).toEqual({
      url: "http://127.0.0.1:8080",
      token: UP_TOKEN,
      tokenSource: join(dir, ".fleetheal", "admin-token"),
    });
  });

  it("sends the token `fleetheal up` wrote only to a loopback gateway", () => {
    const action = { action: true, cwd: dir };
    for (const gateway of [
      "http://127.0.0.1:8080",
      "http://127.3.2.1:9000/fleetheal",
      "http://127.1:8080",
      "http://localhost:8080",
      "http://LOCALHOST:8080",
      "http://[::1]:8080",
    ]) {
      expect(resolveTarget({ gateway }, {}, action).token, gateway).toBe(UP_TOKEN);
    }
    for (const gateway of [
      "http://gw.example:8080",
      "https://10.0.0.5",
      "http://128.0.0.1:8080",
      "http://localhost.example.com",
      "http://[::2]:8080",
      "http://127.0.0.1.nip.io",
    ]) {
      expect(
        configError(() => resolveTarget({ gateway }, {}, action)),
        gateway,
      ).toMatch(
        /is not on this machine: \.fleetheal\/admin-token is sent only to a loopback gateway .* Name the token explicitly: --token-file <file>, or FLEETHEAL_GATEWAY_TOKEN_FILE or FLEETHEAL_GATEWAY_TOKEN$/,
      );
    }
    // Named explicitly, the same file goes anywhere.
    const file = join(dir, ".fleetheal", "admin-token");
    expect(
      resolveTarget({ gateway: "https://gw.example", "token-file": file }, {}, action).token,
    ).toBe(UP_TOKEN);
    expect(
      resolveTarget(
        {},
        { FLEETHEAL_GATEWAY_URL: "https://gw.example", FLEETHEAL_GATEWAY_TOKEN_FILE: file },
        action,
      ).token,
    ).toBe(UP_TOKEN);
  });
});
