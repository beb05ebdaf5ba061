import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AUTH_FILE, natsAuthCommand, randomPassword } from "../cli/nats-auth.js";
import {
  agentPermissions,
  FLEET_STREAMS,
  fleetNatsUsers,
  gatewayPermissions,
  handlerPermissions,
  InvalidHostsError,
  readerPermissions,
  renderAuthorization,
  renderEnvFile,
} from "./nats-permissions.js";

/** Whether a NATS subject pattern matches a literal subject (`*` one token, `>` the rest). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const allowed = (side: { allow: string[]; deny: string[] }, subject: string) =>
  side.allow.some((p) => matches(p, subject)) && !side.deny.some((p) => matches(p, subject));

describe("fleetNatsUsers", () => {
  it("makes one agent per host, then handler, gateway and reader", () => {
    expect(fleetNatsUsers(["a", "b"]).map((u) => [u.user, u.role, u.inboxPrefix])).toEqual([
      ["agent-a", "agent", "_INBOX_a"],
      ["agent-b", "agent", "_INBOX_b"],
      ["handler", "handler", "_INBOX.fleetheal-handler"],
      ["gateway", "gateway", "_INBOX.fleetheal-gateway"],
      ["reader", "reader", "_INBOX.fleetheal-reader"],
    ]);
  });

  it("refuses no hosts, bad host ids and duplicates, all at once", () => {
    expect(() => fleetNatsUsers([])).toThrow(InvalidHostsError);
    expect(() => fleetNatsUsers(["a", "a.b", "a", "x>"])).toThrow(
      /host "a\.b".*host "a": listed twice.*host "x>"/,
    );
  });
});

describe("agent permissions", () => {
  const a = agentPermissions("host-a");

  it("publishes only its own events, snapshot and KV key", () => {
    expect(allowed(a.publish, "fleetheal.v1.evt.host-a.abc.unhealthy")).toBe(true);
    expect(allowed(a.publish, "fleetheal.v1.host.host-a.snapshot")).toBe(true);
    expect(allowed(a.publish, "$KV.fleetheal_hosts.host-a")).toBe(true);
    for (const s of [
      "fleetheal.v1.evt.host-b.abc.unhealthy",
      "fleetheal.v1.host.host-b.snapshot",
      "$KV.fleetheal_hosts.host-b",
      "$KV.fleetheal_ledger.host-a.abc",
      "fleetheal.v1.act.host-a.abc.restarted",
      "fleetheal.v1.cmd.host-a.restart",
      "fleetheal.v1.cmd.host-b.restart",
    ]) {
      expect(allowed(a.publish, s), s).toBe(false);
    }
  });

  it("may look streams up but never create, change or delete them, nor read other hosts", () => {
    for (const stream of FLEET_STREAMS) {
      expect(allowed(a.publish, `$JS.API.STREAM.INFO.${stream}`)).toBe(true);
      for (const op of ["CREATE", "UPDATE", "DELETE", "PURGE"]) {
        expect(allowed(a.publish, `$JS.API.STREAM.${op}.${stream}`)).toBe(false);
      }
    }
    expect(
      allowed(a.publish, "$JS.API.DIRECT.GET.KV_fleetheal_hosts.$KV.fleetheal_hosts.host-a"),
    ).toBe(true);
    expect(
      allowed(a.publish, "$JS.API.DIRECT.GET.KV_fleetheal_hosts.$KV.fleetheal_hosts.host-b"),
    ).toBe(false);
    expect(allowed(a.publish, "$JS.API.CONSUMER.CREATE.FLEETHEAL_EVENTS")).toBe(false);
  });

  it("subscribes only to its own commands, $SRV and its own inbox, and may answer", () => {
    expect(allowed(a.subscribe, "fleetheal.v1.cmd.host-a.restart")).toBe(true);
    expect(allowed(a.subscribe, "$SRV.PING")).toBe(true);
    expect(allowed(a.subscribe, "_INBOX_host-a.x.y")).toBe(true);
    for (const s of [
      "fleetheal.v1.cmd.host-b.restart",
      "fleetheal.v1.evt.host-b.abc.start",
      "_INBOX_host-b.x",
      "_INBOX.x",
      "_INBOX.fleetheal-handler.x",
    ]) {
      expect(allowed(a.subscribe, s), s).toBe(false);
    }
    expect(a.allowResponses).toBe(true);
  });
});

describe("handler, gateway and reader permissions", () => {
  const h = handlerPermissions();
  const g = gatewayPermissions();
  const r = readerPermissions();

  it("lets the handler create the streams and command every host, but delete nothing", () => {
    for (const stream of FLEET_STREAMS) {
      expect(allowed(h.publish, `$JS.API.STREAM.CREATE.${stream}`)).toBe(true);
      expect(allowed(h.publish, `$JS.API.STREAM.DELETE.${stream}`)).toBe(false);
    }
    expect(allowed(h.publish, "$JS.API.CONSUMER.DURABLE.CREATE.FLEETHEAL_EVENTS.heal")).toBe(true);
    expect(allowed(h.publish, "fleetheal.v1.cmd.any-host.restart")).toBe(true);
    expect(allowed(h.publish, "fleetheal.v1.act.h.c.decided")).toBe(true);
    expect(allowed(h.publish, "fleetheal.v1.evt.h.c.start")).toBe(false);
    expect(allowed(h.publish, "$KV.fleetheal_hosts.h")).toBe(false);
    expect(allowed(h.subscribe, "fleetheal.v1.cmd.h.restart")).toBe(false);
  });

  it("lets the gateway restart (only), write the ledger and policy, and create nothing", () => {
    expect(allowed(g.publish, "fleetheal.v1.cmd.h.restart")).toBe(true);
    expect(allowed(g.publish, "fleetheal.v1.cmd.h.stop")).toBe(false);
    expect(allowed(g.publish, "$KV.fleetheal_config.policy")).toBe(true);
    expect(allowed(g.publish, "$KV.fleetheal_ledger.h.c")).toBe(true);
    expect(allowed(g.publish, "$KV.fleetheal_hosts.h")).toBe(false);
    expect(allowed(g.publish, "$JS.API.STREAM.CREATE.FLEETHEAL_EVENTS")).toBe(false);
    expect(allowed(g.publish, "$JS.API.CONSUMER.DURABLE.CREATE.FLEETHEAL_EVENTS.x")).toBe(false);
  });

  it("lets the reader follow and replay, never command or write", () => {
    for (const s of [
      "fleetheal.v1.evt.h.c.start",
      "fleetheal.v1.act.h.c.restarted",
      "fleetheal.v1.host.h.snapshot",
    ]) {
      expect(allowed(r.subscribe, s), s).toBe(true);
    }
    expect(allowed(r.subscribe, "fleetheal.v1.cmd.h.restart")).toBe(false);
    expect(allowed(r.publish, "$JS.API.CONSUMER.MSG.NEXT.FLEETHEAL_EVENTS.x")).toBe(true);
    for (const s of [
      "fleetheal.v1.cmd.h.restart",
      "fleetheal.v1.evt.h.c.start",
      "$KV.fleetheal_hosts.h",
      "$JS.API.STREAM.DELETE.FLEETHEAL_EVENTS",
      "$JS.API.STREAM.PURGE.FLEETHEAL_EVENTS",
      "$JS.API.CONSUMER.DURABLE.CREATE.FLEETHEAL_EVENTS.x",
      "$JS.API.CONSUMER.DELETE.FLEETHEAL_EVENTS.fleetheal-heal",
    ]) {
      expect(allowed(r.publish, s), s).toBe(false);
    }
    expect(r.allowResponses).toBe(false);
  });
});

describe("rendering", () => {
  it("writes an authorization block with every user, its password and permissions", () => {
    const users = fleetNatsUsers(["a"]);
    const passwords = Object.fromEntries(users.map((u) => [u.user, `pw-${u.user}`]));
    const text = renderAuthorization(users, passwords, "header line");
    expect(text.startsWith("# header line\nauthorization {\n  users = [\n")).toBe(true);
    for (const u of users) {
      expect(text).toContain(`user: "${u.user}"\n      password: "pw-${u.user}"`);
    }
    expect(text).toContain(
      [
        "        subscribe: {",
        "          allow: [",
        '            "fleetheal.v1.cmd.a.>",',
        '            "$SRV.>",',
        '            "_INBOX_a.>"',
        "          ]",
        "        }",
      ].join("\n"),
    );
    expect(text).toContain('deny: [\n            "fleetheal.v1.cmd.>"\n          ]');
    expect(text.match(/allow_responses: true/g)).toHaveLength(2);
    expect(() => renderAuthorization(users, {})).toThrow(/no password for NATS user agent-a/);
  });

  it("writes env files with the user, password file and inbox prefix", () => {
    expect(renderEnvFile(agentPermissions("a"), "/etc/fleetheal/agent-a.password")).toBe(
      [
        "# fleetheal agent of host a: NATS credentials",
        "FLEETHEAL_HOST_ID=a",
        "FLEETHEAL_NATS_USER=agent-a",
        "FLEETHEAL_NATS_PASSWORD_FILE=/etc/fleetheal/agent-a.password",
        "FLEETHEAL_NATS_INBOX_PREFIX=_INBOX_a",
        "",
      ].join("\n"),
    );
  });
});

describe("fleetheal nats-auth", () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetheal-nats-auth-unit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = natsAuthCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  };

  it("writes the include file and per-user files, secrets with mode 0600", () => {
    const out = join(dir, "fleet");
    expect(run(["--hosts", "a, b", "--out", out]).code).toBe(0);
    const mode = (f: string) => statSync(join(out, f)).mode & 0o777;
    expect(mode(AUTH_FILE)).toBe(0o600);
    const conf = readFileSync(join(out, AUTH_FILE), "utf8");
    for (const user of ["agent-a", "agent-b", "handler", "gateway", "reader"]) {
      expect(mode(`${user}.password`)).toBe(0o600);
      const password = readFileSync(join(out, `${user}.password`), "utf8").trim();
      expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(conf).toContain(`password: "${password}"`);
      expect(readFileSync(join(out, `${user}.env`), "utf8")).toContain(
        `FLEETHEAL_NATS_PASSWORD_FILE=${join(out, `${user}.password`)}`,
      );
    }
    // New passwords would lock out running roles: not without --force.
    const again = run(["--hosts", "a", "--out", out]);
    expect(again.code).toBe(2);
    expect(again.err.join()).toMatch(/exists; pass --force/);
    expect(run(["--hosts", "a", "--out", out, "--force"]).code).toBe(0);
  });

  it("refuses missing or bad hosts and unknown options with exit code 2", () => {
    expect(run([]).err.join()).toMatch(/--hosts is required/);
    expect(run(["--hosts", "a.b", "--out", join(dir, "x")]).code).toBe(2);
    expect(run(["--hosts", "a", "--bogus"]).code).toBe(2);
  });

  it("makes different random passwords", () => {
    expect(randomPassword()).not.toBe(randomPassword());
  });
});
