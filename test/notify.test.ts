// The notify handler end to end: a real nats-server, a handler process started through the CLI,
// and a real HTTP receiver on loopback standing in for the webhooks. Records go in through
// JetStream exactly as the heal handler publishes them; the receiver is the witness of what was
// sent, how often, and with which payload.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVENTS_STREAM,
  encode,
  HOSTS_BUCKET,
  type HostSnapshot,
  type RemediationPhase,
  type RemediationRecord,
  remediationSubject,
} from "../contracts/index.js";
import { buildPayload } from "../handlers/notify/payloads.js";
import { hostSnapshot as fixtureHostSnapshot, remediationRecord } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import { CLI, type FleetProcess, REPO } from "./support/fleetheal.js";
import { startProcess } from "./support/process.js";
import { waitFor } from "./support/wait.js";
import { startReceiver } from "./support/webhook-receiver.js";

const HOST = "notify-host";
const LOUD = "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const QUIET = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";

// Every secret contains this marker, so one check covers them all.
const MARK = "s3cr3t";
const JSON_PATH_TOKEN = `${MARK}-json-path`;
const JSON_QUERY_TOKEN = `${MARK}-json-query`;
const JSON_PASSWORD = `${MARK}-json-password`;
const SLACK_TOKEN = `${MARK}-slack-token`;
const DISCORD_TOKEN = `${MARK}-discord-token`;

const JSON_PATH = `/hooks/${JSON_PATH_TOKEN}`;
const SLACK_PATH = `/services/T0/B0/${SLACK_TOKEN}`;
const DISCORD_PATH = `/api/webhooks/1/${DISCORD_TOKEN}`;

function record(containerId: string, phase: RemediationPhase, n: number): RemediationRecord {
  return remediationRecord({
    remediationId: `test:${HOST}:${containerId.slice(0, 12)}:${n}`,
    host: HOST,
    containerId,
    containerName: containerId === LOUD ? "web" : "batch",
    phase,
    code: phase === "quarantined" ? "budget-exhausted" : phase,
    message: `${phase} in the notify test`,
    actor: "heal",
  });
}

function hostSnapshot(): HostSnapshot {
  return fixtureHostSnapshot({
    host: HOST,
    containers: [
      { id: LOUD, name: "web", labels: { autoheal: "true" } },
      { id: QUIET, name: "batch", labels: { autoheal: "true", "autoheal.notify": "false" } },
    ],
  });
}

describe("notify handler", () => {
  let fleet: Fleet;
  let nc: NatsConnection;

  beforeAll(async () => {
    // No handler yet: the test starts the one with its notify targets.
    fleet = await startFleet({ nats: "plain", handlers: 0 });
    nc = await fleet.nats.connect();
  });

  afterAll(async () => {
    await fleet?.[Symbol.asyncDispose]();
  });

  it("sends the selected phases to every target, retries, skips muted containers and leaks no secret", async () => {
    const receiver = await startReceiver((req, seen) => {
      const samePath = seen.filter((r) => r.path.startsWith(req.path.split("?")[0] as string));
      // json and slack: the very first request on the path fails; the retry is accepted.
      if (req.path.startsWith(JSON_PATH) || req.path.startsWith(SLACK_PATH)) {
        return samePath.length === 0 ? 500 : 200;
      }
      // discord: the first four tries of each message fail, which uses up the quick retries of
      // one delivery, so JetStream must redeliver the record.
      const sameBody = samePath.filter((r) => r.body === req.body);
      return sameBody.length < 4 ? 500 : 200;
    });
    fleet.defer(receiver.close);
    const base = receiver.url.replace("http://", "");
    const urls = [
      `http://hook:${JSON_PASSWORD}@${base}${JSON_PATH}?token=${JSON_QUERY_TOKEN}`,
      `slack+http://${base}${SLACK_PATH}`,
      `discord+http://${base}${DISCORD_PATH}`,
    ];

    const handler: FleetProcess = await fleet.startHandler({
      name: "notify-handler",
      env: { FLEETHEAL_NOTIFY_URLS: urls.join(", "), FLEETHEAL_NOTIFY_TIMEOUT_MS: "3000" },
    });
    const enabled = await handler.waitForJson(
      (l) => l.msg === "notifications enabled",
      5_000,
      "handler did not log its notify targets",
    );
    expect(enabled.targets).toEqual([
      `#1 json ${receiver.url}/…`,
      `#2 slack ${receiver.url}/…`,
      `#3 discord ${receiver.url}/…`,
    ]);
    expect(enabled.events).toEqual([
      "restarted",
      "failed",
      "quarantined",
      "released",
      "stopped",
      "recreated",
      "alerted",
      "unhealed",
    ]);

    // The agent's snapshot says which container mutes its notifications.
    const hosts = await new Kvm(nc).open(HOSTS_BUCKET);
    await hosts.put(HOST, encode(hostSnapshot()));

    const restarted = record(LOUD, "restarted", 1);
    const skipped = record(LOUD, "skipped", 2); // not a selected phase
    const muted = record(QUIET, "failed", 3); // autoheal.notify=false
    const quarantined = record(LOUD, "quarantined", 4);
    const js = jetstream(nc);
    for (const r of [restarted, skipped, muted, quarantined]) {
      await js.publish(remediationSubject(r.host, r.containerId, r.phase), encode(r), {
        msgID: r.id,
      });
    }

    const ok = (path: string) =>
      receiver.received.filter((r) => r.path.startsWith(path) && r.status === 200);
    await waitFor(
      () => ok(JSON_PATH).length >= 2 && ok(SLACK_PATH).length >= 2 && ok(DISCORD_PATH).length >= 2,
      {
        timeoutMs: 60_000,
        message: () =>
          `receiver got ${receiver.received.map((r) => `${r.status} ${r.path.slice(0, 20)}`).join(", ")}`,
      },
    );
    // Everything acknowledged: nothing more can be sent.
    const jsm = await jetstreamManager(nc);
    await waitFor(
      async () => {
        const info = await jsm.consumers.info(EVENTS_STREAM, "fleetheal-notify");
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { timeoutMs: 30_000, message: "notify consumer still has pending messages" },
    );

    const expected = (kind: "json" | "slack" | "discord") =>
      [restarted, quarantined].map((r) => buildPayload(kind, r).body).sort();
    const bodies = (path: string, status?: number) =>
      receiver.received
        .filter((r) => r.path.startsWith(path) && (status === undefined || r.status === status))
        .map((r) => r.body);

    // json: the first request failed and was retried at once; each record arrived once.
    const json = receiver.received.filter((r) => r.path.startsWith(JSON_PATH));
    expect(json.map((r) => r.status)).toEqual([500, 200, 200]);
    expect(json.every((r) => r.path === `${JSON_PATH}?token=${JSON_QUERY_TOKEN}`)).toBe(true);
    expect(bodies(JSON_PATH, 200).sort()).toEqual(expected("json"));
    expect(expected("json")).toContain(json[0]?.body);
    for (const r of json) {
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers.authorization).toBe(
        `Basic ${Buffer.from(`hook:${JSON_PASSWORD}`).toString("base64")}`,
      );
      expect(r.headers["user-agent"]).toMatch(/^fleetheal\//);
    }
    const first = JSON.parse(bodies(JSON_PATH, 200)[0] as string);
    expect(first.type).toBe("fleetheal.notify.v1.remediation");
    expect([restarted, quarantined]).toContainEqual(first.record);

    // slack: the same, with Slack's payload.
    const slack = receiver.received.filter((r) => r.path.startsWith(SLACK_PATH));
    expect(slack.map((r) => r.status)).toEqual([500, 200, 200]);
    expect(bodies(SLACK_PATH, 200).sort()).toEqual(expected("slack"));

    // discord: four failures per record, then the redelivery got through...
    expect(bodies(DISCORD_PATH, 200).sort()).toEqual(expected("discord"));
    expect(bodies(DISCORD_PATH, 500)).toHaveLength(8);
    // ...and the redelivery did not send json and slack again (their counts above), because
    // this replica remembered those sends.
    const redeliveries = handler.json.filter(
      (l) => l.handler === "notify" && l.msg === "handling failed; will retry",
    );
    expect(redeliveries).toHaveLength(2);
    expect(String(redeliveries[0]?.err)).toMatch(
      /^notification to #3 discord http:\/\/127\.0\.0\.1:\d+\/… failed after 4 attempts: HTTP 500 \(FLEETHEAL_ERR_NOTIFY\)$/,
    );
    expect(
      handler.json.filter((l) => l.msg === "already notified; not sending again"),
    ).toHaveLength(4);

    // Filtered and muted records never reached any target.
    const all = receiver.received.map((r) => r.body).join("\n");
    expect(all).not.toContain("skipped in the notify test");
    expect(all).not.toContain("batch");
    expect(all).not.toContain(QUIET.slice(0, 12));
    expect(
      handler.json.some(
        (l) => l.msg === "notification muted by label autoheal.notify" && l.containerId === QUIET,
      ),
    ).toBe(true);

    // No secret anywhere in the handler's output (at debug level).
    expect(handler.lines.length).toBeGreaterThan(10);
    expect(handler.lines.join("\n").toLowerCase()).not.toContain(MARK);
  });

  it("notify-test sends a sample to every target and reports each, redacted", async () => {
    const receiver = await startReceiver((req) => (req.path.startsWith("/bad/") ? 500 : 200));
    fleet.defer(receiver.close);
    const base = receiver.url.replace("http://", "");
    const run = async (urls: string[]) => {
      const proc = await startProcess({
        name: "notify-test",
        command: process.execPath,
        args: [CLI, "notify-test"],
        env: { FLEETHEAL_NOTIFY_URLS: urls.join(","), FLEETHEAL_NOTIFY_TIMEOUT_MS: "2000" },
        cwd: REPO,
      });
      const status = await proc.exited;
      return { code: status.code, output: proc.lines.join("\n") };
    };

    const good = `slack+http://${base}/good/${MARK}-cli-good`;
    const bad = `ntfy+http://${base}/bad/${MARK}-cli-bad?auth=${MARK}-cli-auth`;
    const mixed = await run([good, bad]);
    expect(mixed.code).toBe(1);
    expect(mixed.output).toMatch(
      new RegExp(`^OK {6}#1 slack ${receiver.url}/… \\(HTTP 200, 1 attempt, \\d+ ms\\)$`, "m"),
    );
    expect(mixed.output).toContain(
      `FAILED  #2 ntfy ${receiver.url}/…: failed after 4 attempts: HTTP 500`,
    );
    expect(mixed.output.toLowerCase()).not.toContain(MARK);

    const allGood = await run([good]);
    expect(allGood.code).toBe(0);
    expect(allGood.output).toMatch(/^OK {6}#1 slack/m);

    const ntfy = receiver.received.filter((r) => r.path.startsWith("/bad/"));
    expect(ntfy).toHaveLength(4);
    expect(ntfy[0]?.headers).toMatchObject({
      title: expect.stringMatching(/^fleetheal: fleetheal-notify-test restarted on [\w-]+$/),
      priority: "3",
      tags: expect.stringMatching(/^white_check_mark,fleetheal,[\w-]+$/),
      "content-type": "text/plain; charset=utf-8",
    });
  });
});
