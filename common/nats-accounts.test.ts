import { describe, expect, it } from "vitest";
import {
  FLEET_ACCOUNT,
  fleetAccounts,
  hostAccount,
  mirrorSource,
  READER_ACCOUNT,
  renderAccounts,
} from "./nats-accounts.js";
import { subjectMatches } from "./nats-permissions.js";

const U = (c: string) => `U${c.repeat(55)}`;
const keys = {
  handler: U("H"),
  gateway: U("G"),
  reader: U("R"),
  agents: { "host-a": U("A"), "host-b": U("B") },
};
const accounts = fleetAccounts(keys);
const account = (name: string) => {
  const a = accounts.find((x) => x.name === name);
  if (!a) throw new Error(`no account ${name}`);
  return a;
};

describe("fleetAccounts", () => {
  it("makes FLEET, one account per host and READER; JetStream only in FLEET and READER", () => {
    expect(accounts.map((a) => [a.name, a.jetstream])).toEqual([
      [FLEET_ACCOUNT, true],
      [hostAccount("host-a"), false],
      [hostAccount("host-b"), false],
      [READER_ACCOUNT, true],
    ]);
    expect(account(FLEET_ACCOUNT).users.map((u) => [u.nkey, u.user.user])).toEqual([
      [U("H"), "handler"],
      [U("G"), "gateway"],
    ]);
    expect(account("HOST_host-a").users.map((u) => [u.nkey, u.user.user])).toEqual([
      [U("A"), "agent-host-a"],
    ]);
  });

  it("imports into a host account exactly its own events and snapshot key, as services", () => {
    expect(account("HOST_host-a").imports).toEqual([
      { kind: "service", account: FLEET_ACCOUNT, subject: "fleetheal.v1.evt.host-a.>" },
      { kind: "service", account: FLEET_ACCOUNT, subject: "$KV.fleetheal_hosts.host-a" },
    ]);
    // FLEET offers them to that host's account alone.
    for (const e of account(FLEET_ACCOUNT).exports) {
      if (e.accounts.includes("HOST_host-a")) {
        expect(e.accounts).toEqual(["HOST_host-a"]);
        expect(e.subject).toMatch(/host-a/);
      }
    }
  });

  it("lets nothing of JetStream's API cross into a host account", () => {
    for (const name of ["HOST_host-a", "HOST_host-b"]) {
      for (const i of account(name).imports) {
        expect(i.subject.startsWith("$JS."), i.subject).toBe(false);
      }
    }
  });

  it("imports every host's command service into FLEET, and nothing of a host elsewhere", () => {
    const fleet = account(FLEET_ACCOUNT);
    expect(fleet.imports.filter((i) => i.account.startsWith("HOST_"))).toEqual([
      { kind: "service", account: "HOST_host-a", subject: "fleetheal.v1.cmd.host-a.*" },
      { kind: "stream", account: "HOST_host-a", subject: "fleetheal.v1.host.host-a.snapshot" },
      { kind: "service", account: "HOST_host-b", subject: "fleetheal.v1.cmd.host-b.*" },
      { kind: "stream", account: "HOST_host-b", subject: "fleetheal.v1.host.host-b.snapshot" },
    ]);
    expect(account(READER_ACCOUNT).imports.every((i) => i.account === FLEET_ACCOUNT)).toBe(true);
  });

  it("gives READER consumer creation on the mirrored streams only, under its own prefix", () => {
    const reader = account(READER_ACCOUNT);
    const services = reader.imports.filter((i) => i.kind === "service");
    const api = services.filter((i) => i.subject.startsWith("$JS.API."));
    expect(api.map((i) => [i.subject, i.to])).toEqual([
      [
        "$JS.API.CONSUMER.CREATE.FLEETHEAL_EVENTS",
        "$JS.fleet.API.CONSUMER.CREATE.FLEETHEAL_EVENTS",
      ],
      [
        "$JS.API.CONSUMER.CREATE.KV_fleetheal_hosts",
        "$JS.fleet.API.CONSUMER.CREATE.KV_fleetheal_hosts",
      ],
    ]);
    // The deliveries come on a prefix that no fleetheal stream captures.
    const deliver = mirrorSource("FLEETHEAL_EVENTS").deliver;
    expect(subjectMatches("fleetheal.v1.>", deliver)).toBe(false);
    expect(mirrorSource("KV_fleetheal_hosts").deliver).not.toBe(deliver);
  });

  it("refuses bad host ids", () => {
    expect(() => fleetAccounts({ ...keys, agents: { "a.b": U("A") } })).toThrow(/a\.b/);
  });
});

describe("renderAccounts", () => {
  const text = renderAccounts(accounts, "header line");

  it("writes an accounts block with every account, user key, export and import", () => {
    expect(text.startsWith("# header line\naccounts {\n")).toBe(true);
    for (const a of accounts) expect(text).toContain(`  "${a.name}": {`);
    for (const k of [U("H"), U("G"), U("R"), U("A"), U("B")]) {
      expect(text).toContain(`nkey: "${k}"`);
    }
    expect(text).toContain(
      '{ service: { account: "FLEET", subject: "fleetheal.v1.evt.host-a.>" } }',
    );
    expect(text).toContain(
      '{ service: { account: "READER", subject: "$JS.API.INFO" }, to: "$JS.reader.API.INFO" }',
    );
    expect(text).toContain('{ service: "fleetheal.v1.cmd.host-b.*", accounts: ["FLEET"] }');
    expect(text.match(/jetstream: enabled/g)).toHaveLength(2);
    expect(text).not.toMatch(/password/);
  });
});
