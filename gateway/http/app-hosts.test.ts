import { afterEach, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../../test/support/gateway-fakes.js";
import type { FleetHostsAdmin } from "../nats/ports.js";

const ADMIN = "admin-token-0123456789abcdef";
const auth = { authorization: `Bearer ${ADMIN}` };

/** The hosts of an `up`, in memory: what the routes ask of cli/fleet-hosts.ts. */
class MemoryHosts implements FleetHostsAdmin {
  readonly issued = new Map<string, "issued" | "connected">([["host-1", "connected"]]);
  async add(host: string) {
    const created = !this.issued.has(host);
    this.issued.set(host, "issued");
    return { host, token: `FHJ1-token-of-${host}`, created };
  }
  async remove(host: string) {
    if (!this.issued.delete(host)) {
      throw Object.assign(new Error(`host ${host} has no credential`), { statusCode: 404 });
    }
    return { host, snapshotDeleted: true };
  }
  async credentials() {
    return [...this.issued].map(([host, state]) => ({ host, state }));
  }
}

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.app.close();
  gw = undefined;
});

describe("adding and removing hosts", () => {
  it("answers the new host's token, over loopback and with the admin token only", async () => {
    const hosts = new MemoryHosts();
    gw = await startTestGateway({ tokens: { adminToken: ADMIN }, hosts });
    const add = (headers: Record<string, string>, remoteAddress = "127.0.0.1") =>
      gw?.app.inject({
        method: "POST",
        url: "/hosts",
        headers,
        payload: { host: "host-2" },
        remoteAddress,
      });
    expect((await add({}))?.statusCode).toBe(401);
    const remote = await add(auth, "10.0.0.9");
    expect(remote?.statusCode).toBe(403);
    expect(remote?.json().error.message).toContain("loopback");
    expect(hosts.issued.has("host-2")).toBe(false);
    const created = await add(auth);
    expect(created?.statusCode).toBe(201);
    expect(created?.json()).toEqual({
      host: "host-2",
      token: "FHJ1-token-of-host-2",
      created: true,
    });
    expect((await add(auth))?.statusCode).toBe(200);
    const bad = await gw.app.inject({
      method: "POST",
      url: "/hosts",
      headers: auth,
      payload: { host: "a.b" },
      remoteAddress: "127.0.0.1",
    });
    expect(bad.statusCode).toBe(400);
  });

  it("lists each host's credential with the hosts, and removes one", async () => {
    const hosts = new MemoryHosts();
    gw = await startTestGateway({ tokens: { adminToken: ADMIN }, hosts });
    await hosts.add("host-2");
    const list = await gw.app.inject({ method: "GET", url: "/hosts" });
    expect(list.json().credentials).toEqual([
      { host: "host-1", state: "connected" },
      { host: "host-2", state: "issued" },
    ]);
    const remove = (host: string) =>
      gw?.app.inject({
        method: "DELETE",
        url: `/hosts/${host}`,
        headers: auth,
        remoteAddress: "::1",
      });
    expect((await remove("host-2"))?.json()).toEqual({ host: "host-2", snapshotDeleted: true });
    expect((await remove("host-2"))?.statusCode).toBe(404);
  });

  it("does not exist outside fleetheal up", async () => {
    gw = await startTestGateway({ tokens: { adminToken: ADMIN } });
    const res = await gw.app.inject({
      method: "POST",
      url: "/hosts",
      headers: auth,
      payload: { host: "host-2" },
    });
    expect(res.statusCode).toBe(404);
    expect((await gw.app.inject({ method: "GET", url: "/hosts" })).json()).not.toHaveProperty(
      "credentials",
    );
  });
});
