// The upgrade of docs/DEPLOY.md, "Upgrading from a deployment with passwords ($G)", on its
// topology: a 3-node NATS cluster in the old layout (users with passwords, streams in `$G` with
// three copies), exported with the old handler's credentials, started again from empty stores
// with the accounts of `fleetheal nats-auth`, and imported with the new handler's. The cluster
// is healthy afterwards, every stream keeps three copies and its content, and the heal handler's
// durable consumer starts after the events the old one had acknowledged.

import { copyFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { AUTH_FILE, envFile, writeFleetCredentials } from "../common/fleet-credentials.js";
import { DEFAULT_STREAM_LIMITS, openFleetJetStream } from "../common/jetstream-resources.js";
import { type ContainerEvent, EVENTS_STREAM, HOSTS_BUCKET } from "../contracts/index.js";
import { healHandler } from "../handlers/heal.js";
import { durableConfig } from "../handlers/runtime/durable-consumer.js";
import { readEnvFile } from "./support/fleet-nats.js";
import { runCommand } from "./support/fleetheal.js";
import {
  connectAs,
  content,
  event,
  HOST,
  lastValues,
  MIGRATED,
  publishEvents,
  snapshotStreams,
  writeBuckets,
  writeLegacyAuth,
} from "./support/legacy-deployment.js";
import { startNatsCluster } from "./support/nats-cluster.js";
import { readRaw } from "./support/stream.js";

describe("fleetheal nats-migrate on a 3-node cluster", () => {
  it("carries everything into FLEET, the cluster started again from empty stores", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-migrate-cluster-"));
    try {
      const legacy = await writeLegacyAuth(dir);
      const nodeDirs: string[] = [];
      await using cluster = await startNatsCluster(3, "fleetheal-upgrade", {
        async configure(plan) {
          nodeDirs[plan.index] = plan.dir;
          await copyFile(legacy.file, path.join(plan.dir, "fleetheal-auth.conf"));
          const configFile = path.join(plan.dir, "nats-server.conf");
          const storeDir = path.join(plan.dir, "js");
          const routes = plan.clusterPorts.map((p) => `"nats-route://127.0.0.1:${p}"`);
          await writeFile(
            configFile,
            [
              `server_name: n${plan.index + 1}`,
              `listen: "127.0.0.1:${plan.port}"`,
              `http: "127.0.0.1:${plan.monitorPort}"`,
              `jetstream { store_dir: "${storeDir}" }`,
              "cluster {",
              "  name: fleetheal-upgrade",
              `  listen: "127.0.0.1:${plan.clusterPort}"`,
              `  routes: [${routes.join(", ")}]`,
              "}",
              `include "./fleetheal-auth.conf"`,
              "",
            ].join("\n"),
          );
          return { serverName: `n${plan.index + 1}`, configFile, storeDir };
        },
      });

      // The old deployment, with three copies of everything.
      const admin = await connect({ servers: cluster.urls.split(","), ...legacy.admin });
      await new Kvm(admin).create(HOSTS_BUCKET, { history: 1, replicas: 3 });
      // FLEETHEAL_EVENTS as the old code created it: capturing the hosts' events itself.
      await openFleetJetStream(admin, DEFAULT_STREAM_LIMITS, 3, { captureHostEvents: true });
      const events = Array.from({ length: 8 }, (_, i) => event(i % 2 ? "start" : "create", i));
      await publishEvents(admin, events);
      // The old heal handler's durable, which had acknowledged the first five events.
      const heal = healHandler({ maxEventAgeMs: 300_000, retryDelayMs: 0 });
      const start = { startTime: new Date(Date.now() - 300_000) };
      await (await jetstreamManager(admin)).consumers.add(
        EVENTS_STREAM,
        durableConfig(heal, start),
      );
      const durable = await jetstream(admin).consumers.get(EVENTS_STREAM, "fleetheal-heal");
      for await (const m of await durable.fetch({ max_messages: 5 })) await m.ackAck();
      await writeBuckets(admin);
      const before = await snapshotStreams(admin);
      await admin.close();

      const file = path.join(dir, "export.jsonl");
      const oldEnv = { FLEETHEAL_NATS_URL: cluster.urls, ...legacy.handlerEnv };
      const exported = await runCommand(["nats-migrate", "export", "--out", file], oldEnv);
      expect(exported.code, exported.lines.join("\n")).toBe(0);

      // Every node stops; each store is kept aside (the way back) and each starts empty with
      // the accounts. On the old stores the cluster's metadata would keep the `$G` streams,
      // which no account can serve any more, and /healthz would fail on every node.
      const creds = writeFleetCredentials(path.join(dir, "nats-auth-accounts"), {
        addHosts: [HOST],
      });
      await Promise.all([0, 1, 2].map((i) => cluster.stop(i)));
      for (const [i, node] of cluster.nodes.entries()) {
        await rename(node.storeDir, `${node.storeDir}.pre-accounts`);
        const include = path.join(nodeDirs[i] as string, "fleetheal-auth.conf");
        await copyFile(path.join(creds.dir, AUTH_FILE), include);
      }
      await Promise.all([0, 1, 2].map((i) => cluster.start(i)));

      const handlerEnv = {
        FLEETHEAL_NATS_URL: cluster.urls,
        FLEETHEAL_JS_REPLICAS: "3",
        ...(await readEnvFile(envFile(creds.dir, "handler"))),
      };
      const imported = await runCommand(["nats-migrate", "import", "--in", file], handlerEnv);
      expect(imported.code, imported.lines.join("\n")).toBe(0);

      const asHandler = await connectAs(cluster.urls, handlerEnv);
      try {
        const jsm = await jetstreamManager(asHandler);
        for (const [name, old] of before) {
          const expected = name === `KV_${HOSTS_BUCKET}` ? lastValues(old) : old;
          expect(content(await readRaw(asHandler, name)), name).toEqual(content(expected));
        }
        for (const name of MIGRATED) {
          expect((await jsm.streams.info(name)).config.num_replicas, name).toBe(3);
        }
        expect((await jsm.streams.info(`KV_${HOSTS_BUCKET}`)).config.allow_rollup_hdrs).toBe(false);
        // What the durable delivers first: the events after the five it had acknowledged.
        expect(
          (await jsm.consumers.info(EVENTS_STREAM, "fleetheal-heal")).config.opt_start_seq,
        ).toBe(6);
        const placed = await jetstream(asHandler).consumers.get(EVENTS_STREAM, "fleetheal-heal");
        const ids: string[] = [];
        for await (const m of await placed.fetch({ max_messages: events.length, expires: 2_000 })) {
          ids.push(m.json<ContainerEvent>().id);
        }
        expect(ids).toEqual(events.slice(5).map((e) => e.id));
        for (const node of cluster.nodes) {
          const health = await fetch(`${node.monitorUrl}/healthz`);
          expect(health.status, `${node.name}: ${await health.text()}`).toBe(200);
        }
      } finally {
        await asHandler.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
