// Proves the integration rig itself: real nats-server, real dockerd engines, real containers, and
// that everything is gone after dispose. If this file fails, other integration failures are
// probably rig problems rather than product bugs.

import { access } from "node:fs/promises";
import net from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { ensureBusyboxImage, TEST_IMAGE } from "./support/busybox-image.js";
import { isAlive } from "./support/children.js";
import {
  breakPersistently,
  makeHealthy,
  makeUnhealthy,
  recordDockerEvents,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { mountsUnder, processesUnder, startDockerEngines } from "./support/dockerd.js";
import { startAccountsNats } from "./support/fleet-nats.js";
import { startNatsServer } from "./support/nats-server.js";
import { startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";

async function pathExists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

describe("integration rig", () => {
  it("runs nats-server with JetStream and restarts it on the same port with the same store", async () => {
    let dir: string;
    let pid: number;
    {
      await using nats = await startNatsServer({ name: "rig" });
      dir = nats.dir;
      expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);

      const jsz = (await (await fetch(`${nats.monitorUrl}/jsz`)).json()) as {
        disabled?: boolean;
        config?: { store_dir?: string };
      };
      expect(jsz.disabled).toBeFalsy();
      expect(jsz.config?.store_dir).toContain(nats.storeDir);

      const nc = await connect({
        servers: nats.url,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: "RIG", subjects: ["rig.>"] });
        await jetstream(nc).publish("rig.one", "hello");

        let reconnects = 0;
        void (async () => {
          for await (const s of nc.status()) if (s.type === "reconnect") reconnects++;
        })();

        const port = nats.port;
        const firstPid = nats.pid;
        await nats.kill();
        expect(await tcpAccepts(port)).toBe(false);

        await nats.restart();
        expect(nats.port).toBe(port);
        expect(nats.pid).not.toBe(firstPid);
        pid = nats.pid;

        // The same client reconnects to the same URL and finds the stream kept in the store dir.
        // (Asking before the reconnect would lose the request and wait out its 5 s timeout.)
        await waitFor(() => reconnects > 0, {
          timeoutMs: 10_000,
          message: "client did not reconnect after nats-server restart",
        });
        const info = await jsm.streams.info("RIG");
        expect(info.state.messages).toBe(1);
      } finally {
        await nc.close();
      }
    }
    expect(await pathExists(dir)).toBe(false);
    expect((await processesUnder(dir)).map((p) => p.pid)).not.toContain(pid);
  });

  it("keeps JetStream across a reload of a server run with the fleet's accounts", async () => {
    await using nats = await startAccountsNats(["rig-a"]);
    const asHandler = await nats.connect({ user: "handler" });
    const jsm = await jetstreamManager(asHandler);
    expect((await jsm.getAccountInfo()).streams).toBe(0);
    await nats.update({ addHosts: ["rig-b"] });
    // nats-server 2.9 drops a command-line `-js` on reload; the rig must not depend on it.
    const jsz = (await (await fetch(`${nats.server.monitorUrl}/jsz`)).json()) as {
      disabled?: boolean;
    };
    expect(jsz.disabled).toBeFalsy();
    await waitFor(async () => (await jsm.getAccountInfo()).streams === 0, {
      timeoutMs: 10_000,
      message: "JetStream stopped answering after the reload",
    });
    await expect(nats.env("agent-rig-b")).resolves.toBeDefined();
  });

  it("runs two isolated docker engines with health-checked containers and cleans up", async () => {
    let roots: string[] = [];
    const t0 = performance.now();
    {
      await using set = await startDockerEngines(2, { namePrefix: "rig" });
      const tStarted = performance.now();
      console.log(`rig: starting 2 docker engines took ${Math.round(tStarted - t0)} ms`);
      const [a, b] = set.engines;
      if (!a || !b) throw new Error("expected two engines");
      roots = set.engines.map((e) => e.root);
      expect(a.socketPath.length).toBeLessThan(108);

      await Promise.all([ensureBusyboxImage(a), ensureBusyboxImage(b)]);
      console.log(`rig: importing the image took ${Math.round(performance.now() - tStarted)} ms`);
      expect((await a.docker.getImage(TEST_IMAGE).inspect()).Config.Env).toContain("PATH=/bin");

      await using eventsA = await recordDockerEvents(a);
      await using eventsB = await recordDockerEvents(b);
      const ca = await runTestContainer(a, { name: "rig-a", labels: { "fleetheal.test": "rig" } });
      const cb = await runTestContainer(b, { name: "rig-b" });
      await Promise.all([
        waitForHealth(a, ca.id, "healthy", 10_000),
        waitForHealth(b, cb.id, "healthy", 10_000),
      ]);

      // Engines are separate hosts: neither sees the other's containers.
      const namesOn = async (e: typeof a) =>
        (await e.docker.listContainers({ all: true })).flatMap((c) => c.Names);
      expect(await namesOn(a)).toEqual(["/rig-a"]);
      expect(await namesOn(b)).toEqual(["/rig-b"]);

      await makeUnhealthy(a, ca.id);
      const unhealthy = await eventsA.waitFor(
        (e) => e.id === ca.id && e.action === "health_status: unhealthy",
        10_000,
        "rig-a should turn unhealthy",
      );
      expect(unhealthy.name).toBe("rig-a");
      expect(unhealthy.attributes["fleetheal.test"]).toBe("rig");
      await makeHealthy(a, ca.id);
      await eventsA.waitFor(
        (e) =>
          e.id === ca.id &&
          e.action === "health_status: healthy" &&
          e.timeNano > unhealthy.timeNano,
        10_000,
        "rig-a should recover",
      );
      expect(eventsA.count((e) => e.action === "kill")).toBe(0);

      // The recorder sees every step of a restart, once each and in order.
      const before = eventsA.events.length;
      await a.docker.getContainer(ca.id).restart();
      await eventsA.waitFor(
        (e) => e.id === ca.id && e.action === "restart",
        10_000,
        "rig-a should restart",
      );
      const lifecycle = eventsA.events
        .slice(before)
        .filter((e) => e.id === ca.id && !/^(exec_|health_status)/.test(e.action))
        .map((e) => e.action);
      expect(lifecycle).toEqual(["kill", "die", "stop", "start", "restart"]);
      expect(eventsB.count((e) => e.action.startsWith("health_status: unhealthy"))).toBe(0);

      // A persistently broken container stays unhealthy across a restart.
      await breakPersistently(b, cb.id);
      await waitForHealth(b, cb.id, "unhealthy", 10_000);

      const tRestart = performance.now();
      await b.restart();
      console.log(`rig: restarting an engine took ${Math.round(performance.now() - tRestart)} ms`);
      const after = await b.docker.getContainer(cb.id).inspect();
      expect(after.Name).toBe("/rig-b");
      expect(after.State.Running).toBe(false);
      await eventsB.waitFor(
        (e) => e.id === cb.id && e.action === "die",
        5_000,
        "shutdown of dockerd should have stopped rig-b",
      );

      // The recorder follows the engine across the restart.
      await b.docker.getContainer(cb.id).start();
      await eventsB.waitFor(
        (e) => e.id === cb.id && e.action === "start" && e.timeNano > unhealthy.timeNano,
        10_000,
        "the recorder should see the start after the engine restart",
      );
      expect(eventsB.reconnects).toBeGreaterThanOrEqual(1);
      await waitForHealth(b, cb.id, "unhealthy", 10_000);
      expect(eventsB.count((e) => e.id === cb.id && e.action === "start")).toBe(2);
    }
    console.log(`rig: the docker part took ${Math.round(performance.now() - t0)} ms in total`);

    for (const root of roots) {
      expect(await pathExists(root), `${root} should be removed`).toBe(false);
      expect(await processesUnder(root), `processes left under ${root}`).toEqual([]);
      expect(await mountsUnder(root), `mounts left under ${root}`).toEqual([]);
    }
  });

  it("cleans up an engine whose daemons were SIGKILLed with containers running", async () => {
    const t0 = performance.now();
    await using set = await startDockerEngines(1, { namePrefix: "crash" });
    const [engine] = set.engines;
    if (!engine) throw new Error("expected one engine");
    const { id } = await runTestContainer(engine, { name: "orphan" });
    const containerPid = (await engine.docker.getContainer(id).inspect()).State.Pid;
    expect(containerPid).toBeGreaterThan(0);

    // A crashed host: dockerd and containerd die, the shim and the container keep running and
    // the overlay, netns and data-root bind mounts stay behind.
    const daemons = (await processesUnder(engine.root)).filter(
      (p) => !/shim/.test(p.argv[0] ?? ""),
    );
    expect(daemons).toHaveLength(2);
    for (const p of daemons) process.kill(p.pid, "SIGKILL");
    await waitFor(
      async () => (await processesUnder(engine.root)).every((p) => /shim/.test(p.argv[0] ?? "")),
      { timeoutMs: 5_000, message: "dockerd/containerd did not die" },
    );
    expect((await mountsUnder(engine.root)).length).toBeGreaterThan(0);

    await engine.stop();
    console.log(`rig: crash cleanup test took ${Math.round(performance.now() - t0)} ms`);
    expect(await pathExists(engine.root)).toBe(false);
    expect(await processesUnder(engine.root)).toEqual([]);
    expect(await mountsUnder(engine.root)).toEqual([]);
    expect(await isAlive(containerPid)).toBe(false);
  });

  it("runs a process and waits for its lines and JSON logs", async () => {
    // The handler goes first: "ready" must mean SIGTERM is handled, or stop() can beat it.
    const script = [
      "process.on('SIGTERM', () => { console.log(JSON.stringify({ msg: 'bye' })); process.exit(0); });",
      "console.log('plain line');",
      "console.log(JSON.stringify({ level: 30, msg: 'ready', port: 1234 }));",
      "setInterval(() => {}, 1000);",
    ].join("\n");
    await using proc = await startProcess({
      name: "echo",
      command: process.execPath,
      args: ["-e", script],
    });
    const ready = await proc.waitForJson((o) => o.msg === "ready", 10_000);
    expect(ready.port).toBe(1234);
    expect(await proc.waitForLine((l) => l === "plain line", 1_000)).toBe("plain line");
    const status = await proc.stop();
    expect(status).toEqual({ code: 0, signal: null });
    expect(proc.json.at(-1)).toEqual({ msg: "bye" });
    await expect(proc.waitForLine((l) => l === "never", 5_000)).rejects.toThrow(/exited/);
  });
});
