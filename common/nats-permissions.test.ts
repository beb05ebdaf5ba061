import { describe, expect, it } from "vitest";
import {
  agentPermissions,
  FLEET_STREAMS,
  fleetNatsUsers,
  gatewayPermissions,
  handlerPermissions,
  InvalidHostsError,
  subjectMatches as matches,
  READER_MIRRORS,
  readerPermissions,
} from "./nats-permissions.js";

const allowed = (side: { allow: string[]; deny: string[] }, subject: string) =>
  side.allow.some((p) => matches(p, subject)) && !side.deny.some((p) => matches(p, subject));

describe("subjectMatches", () => {
  it("matches literal tokens, * as one token and > as the rest", () => {
    expect(matches("a.b", "a.b")).toBe(true);
    expect(matches("a.*", "a.b")).toBe(true);
    expect(matches("a.*", "a.b.c")).toBe(false);
    expect(matches("a.>", "a.b.c")).toBe(true);
    expect(matches("a.>", "a")).toBe(false);
    expect(matches("a.b", "a.b.c")).toBe(false);
  });
});

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

  it("has no JetStream API at all", () => {
    for (const stream of FLEET_STREAMS) {
      for (const op of ["INFO", "CREATE", "UPDATE", "DELETE", "PURGE", "MSG.GET"]) {
        expect(allowed(a.publish, `$JS.API.STREAM.${op}.${stream}`)).toBe(false);
      }
    }
    expect(allowed(a.publish, "$JS.API.INFO")).toBe(false);
    expect(
      allowed(a.publish, "$JS.API.DIRECT.GET.KV_fleetheal_hosts.$KV.fleetheal_hosts.host-a"),
    ).toBe(false);
    expect(allowed(a.publish, "$JS.API.CONSUMER.CREATE.FLEETHEAL_EVENTS")).toBe(false);
  });

  it("subscribes only to its own commands, $SRV and its own inbox, and may answer", () => {
    expect(allowed(a.subscribe, "fleetheal.v1.cmd.host-a.restart")).toBe(true);
    expect(allowed(a.subscribe, "$SRV.PING")).toBe(true);
    expect(allowed(a.subscribe, "_INBOX_host-a.x.y")).toBe(true);
    for (const s of [
      "fleetheal.v1.cmd.host-b.restart",
      "fleetheal.v1.cmd.host-a.restart.more",
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

  it("lets the handler keep the listed hosts' events streams and the fleet's sources only", () => {
    const keeper = handlerPermissions(["a", "b"]);
    for (const host of ["a", "b"]) {
      expect(allowed(keeper.publish, `$JS.API.STREAM.CREATE.FLEETHEAL_EVENTS_HOST_${host}`)).toBe(
        true,
      );
      expect(allowed(keeper.publish, `$JS.API.STREAM.INFO.FLEETHEAL_EVENTS_HOST_${host}`)).toBe(
        true,
      );
      expect(allowed(keeper.publish, `$JS.API.STREAM.UPDATE.FLEETHEAL_EVENTS_HOST_${host}`)).toBe(
        false,
      );
    }
    expect(allowed(keeper.publish, "$JS.API.STREAM.CREATE.FLEETHEAL_EVENTS_HOST_c")).toBe(false);
    expect(allowed(keeper.publish, "$JS.API.STREAM.UPDATE.FLEETHEAL_EVENTS")).toBe(true);
    expect(allowed(keeper.publish, "$JS.API.STREAM.UPDATE.FLEETHEAL_DLQ")).toBe(false);
    expect(allowed(g.publish, "$JS.API.STREAM.UPDATE.FLEETHEAL_EVENTS")).toBe(false);
  });

  it("lets the gateway restart (only), write the ledger, policy and snapshots, create nothing", () => {
    expect(allowed(g.publish, "fleetheal.v1.cmd.h.restart")).toBe(true);
    expect(allowed(g.publish, "fleetheal.v1.cmd.h.stop")).toBe(false);
    expect(allowed(g.publish, "$KV.fleetheal_config.policy")).toBe(true);
    expect(allowed(g.publish, "$KV.fleetheal_ledger.h.c")).toBe(true);
    // A removed host's snapshot (hosts are tokens: no subject below a key).
    expect(allowed(g.publish, "$KV.fleetheal_hosts.h")).toBe(true);
    expect(allowed(g.publish, "$KV.fleetheal_hosts.h.x")).toBe(false);
    expect(allowed(g.publish, "$JS.API.STREAM.CREATE.FLEETHEAL_EVENTS")).toBe(false);
    expect(allowed(g.publish, "$JS.API.CONSUMER.DURABLE.CREATE.FLEETHEAL_EVENTS.x")).toBe(false);
  });

  it("lets the handler create the readers' mirrors in READER, and nothing else there", () => {
    for (const stream of READER_MIRRORS) {
      expect(allowed(h.publish, `$JS.reader.API.STREAM.CREATE.${stream}`)).toBe(true);
      expect(allowed(h.publish, `$JS.reader.API.STREAM.DELETE.${stream}`)).toBe(false);
    }
    expect(allowed(h.publish, "$JS.reader.API.STREAM.CREATE.OTHER")).toBe(false);
    expect(allowed(g.publish, "$JS.reader.API.STREAM.CREATE.FLEETHEAL_EVENTS")).toBe(false);
  });

  it("lets the reader replay and watch its mirrors, never reach FLEET or write", () => {
    for (const s of [
      "$JS.API.CONSUMER.CREATE.FLEETHEAL_EVENTS",
      "$JS.API.CONSUMER.MSG.NEXT.FLEETHEAL_EVENTS.x",
      "$JS.API.CONSUMER.DELETE.FLEETHEAL_EVENTS.x",
      "$JS.API.DIRECT.GET.KV_fleetheal_hosts.$KV.fleetheal_hosts.h",
      "$JS.ACK.FLEETHEAL_EVENTS.x.1.1.1.1.0",
    ]) {
      expect(allowed(r.publish, s), s).toBe(true);
    }
    for (const s of [
      "$JS.fleet.API.CONSUMER.CREATE.FLEETHEAL_EVENTS",
      "fleetheal.v1.cmd.h.restart",
      "fleetheal.v1.evt.h.c.start",
      "$KV.fleetheal_hosts.h",
      "$JS.API.STREAM.CREATE.FLEETHEAL_EVENTS",
      "$JS.API.STREAM.CREATE.EVIL",
      "$JS.API.STREAM.UPDATE.FLEETHEAL_EVENTS",
      "$JS.API.STREAM.DELETE.FLEETHEAL_EVENTS",
      "$JS.API.STREAM.PURGE.FLEETHEAL_EVENTS",
      "$JS.API.CONSUMER.CREATE.FLEETHEAL_DLQ",
    ]) {
      expect(allowed(r.publish, s), s).toBe(false);
    }
    expect(allowed(r.subscribe, "_INBOX.fleetheal-reader.x")).toBe(true);
    expect(allowed(r.subscribe, "fleetheal.v1.cmd.h.restart")).toBe(false);
    expect(r.allowResponses).toBe(false);
  });
});
