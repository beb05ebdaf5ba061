// Size limits on labels, enforced twice, on real parts (nats-server with accounts, dockerd, the
// agent, a handler and the gateway): a container with well over NATS's 1 MB message limit in
// labels must neither hold up its host's events nor go unreported, and a host that publishes
// oversized labels itself (its agent replaced) is refused by the handlers and the gateway. A
// snapshot that many containers' labels make too large for NATS still goes out, without labels.

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerEvent,
  DEAD_LETTER_HEADERS,
  DLQ_STREAM,
  EVENTS_STREAM,
  encode,
  eventSubject,
  HOSTS_BUCKET,
  LABEL_TRUNCATION_MARKER,
  labelsSize,
  MAX_LABEL_VALUE,
  MAX_LABELS,
  MAX_LABELS_TOTAL,
} from "../contracts/index.js";
import { ensureBusyboxImage, TEST_IMAGE } from "./support/busybox-image.js";
import { runTestContainer } from "./support/containers.js";
import { containerEvent, containerSnapshot, hostSnapshot } from "./support/fixtures.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "biglabels";
const exited: string[] = [];
let fleet: Fleet;
let host: FleetHost;
let reader: NatsConnection;

/** `count` labels of 4,000 characters under `autoheal.<prefix>.`. */
function padLabels(prefix: string, count: number): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let n = 0; n < count; n++) labels[`autoheal.${prefix}.${n}`] = "p".repeat(4_000);
  return labels;
}

/**
 * A container with 1.7 MB of labels. dockerd refuses a create request over about 1 MB, so half
 * of them come from its image: a committed container's labels become its image's, and a
 * container has its image's labels and its own.
 */
async function hugeContainer(): Promise<{ id: string; name: string }> {
  const base = await runTestContainer(host.engine, {
    name: "huge-base",
    labels: padLabels("img", 200),
    healthcheck: false,
  });
  const container = host.engine.docker.getContainer(base.id);
  // The body of a commit is the image's config; its labels are the container's.
  await container.commit({ repo: "fleetheal-test/huge-labels", tag: "1" });
  await container.remove({ force: true });
  return runTestContainer(host.engine, {
    name: "huge",
    image: "fleetheal-test/huge-labels:1",
    labels: { autoheal: "true", "autoheal.note": "n".repeat(100_000), ...padLabels("ctr", 200) },
    healthcheck: false,
  });
}

beforeAll(async () => {
  fleet = await startFleet({ hosts: [HOST], gateway: true });
  host = fleet.host(HOST);
  reader = await fleet.nats.connect({ user: "handler", name: "label-limits-reader" });
  for (const role of [...fleet.handlers, fleet.gateway, host.agent]) {
    void role.exited.then(() => exited.push(role.name));
  }
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** The gateway's value of one series, or 0 when it has none. */
async function metric(series: string): Promise<number> {
  const text = await (await fetch(`${fleet.gateway.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe("label size limits", () => {
  it("a container with over 1 MB of labels neither blocks its host's events nor goes unreported", async () => {
    const huge = await hugeContainer();
    const { Config } = await host.engine.docker.getContainer(huge.id).inspect();
    expect(labelsSize(Config.Labels)).toBeGreaterThan(1_600_000);
    const normal = await runTestContainer(host.engine, {
      name: "normal",
      labels: { autoheal: "true" },
      healthcheck: false,
    });
    // 25 kill/start cycles: 75 oversized events, more than the outbox's window of 64, which
    // used to be retried forever and block every event behind them.
    for (let n = 0; n < 25; n++) {
      await host.engine.docker.getContainer(huge.id).kill();
      await host.engine.docker.getContainer(huge.id).start();
    }
    await host.engine.docker.getContainer(normal.id).kill();
    const died = await host.docker.waitFor(
      (e) => e.id === normal.id && e.action === "die",
      10_000,
      "Docker never reported the normal container's die",
    );
    const stored = await waitFor(
      async () => {
        const events = await readStored(
          reader,
          eventSubject(HOST, normal.id, "die"),
          ContainerEvent,
        );
        return events.find((e) => BigInt(e.timeNano) === died.timeNano);
      },
      {
        timeoutMs: 20_000,
        message: "the normal container's die never reached the stream beside the huge labels",
      },
    );
    expect(stored.container.name).toBe("normal");

    // The huge container's own events were published too, cut and marked.
    const hugeStarts = await waitFor(
      async () => {
        const events = await readStored(
          reader,
          eventSubject(HOST, huge.id, "start"),
          ContainerEvent,
        );
        return events.length >= 26 ? events : undefined;
      },
      { timeoutMs: 30_000, message: "not every start of the huge container reached the stream" },
    );
    for (const e of hugeStarts) {
      expect(Object.keys(e.container.labels).length).toBeLessThanOrEqual(MAX_LABELS);
      expect(labelsSize(e.container.labels)).toBeLessThanOrEqual(MAX_LABELS_TOTAL);
      expect(e.container.labels.autoheal).toBe("true");
      expect(e.container.labelsCut?.dropped).toBeGreaterThan(200);
    }
    const note = hugeStarts[0]?.container.labels["autoheal.note"];
    // The shortest keys are kept first: the note's key is shorter than every pad's.
    expect(note).toHaveLength(MAX_LABEL_VALUE);
    expect(note?.endsWith(LABEL_TRUNCATION_MARKER)).toBe(true);
    expect(hugeStarts[0]?.container.labelsCut?.truncated).toBe(1);

    // And in the snapshot the gateway shows.
    const detail = await waitFor(
      async () => {
        const res = await fetch(`${fleet.gateway.url}/containers/${HOST}/huge`);
        if (res.status !== 200) return undefined;
        const body = (await res.json()) as {
          container: { labels: Record<string, string>; labelsCut?: unknown };
        };
        return body.container.labelsCut ? body : undefined;
      },
      { timeoutMs: 15_000, message: "the gateway never showed the huge container, cut" },
    );
    expect(labelsSize(detail.container.labels)).toBeLessThanOrEqual(MAX_LABELS_TOTAL);

    // Nothing was refused or retried for size: the agent cut the labels before publishing.
    const agentLog = host.agent.json;
    expect(agentLog.filter((l) => l.msg === "event publish failed")).toEqual([]);
    expect(agentLog.filter((l) => String(l.msg).startsWith("NATS refuses"))).toEqual([]);
    expect(await metric(`fleetheal_agent_unpublishable_events{host="${HOST}"}`)).toBe(0);
    expect(exited).toEqual([]);
  });

  it("oversized labels published with a host's own credentials are refused by the handlers and the gateway", async () => {
    const asHost = await fleet.nats.connect({ user: `agent-${HOST}`, name: "replaced-agent" });
    const jsm = await jetstreamManager(reader);
    const dlqBefore = (await jsm.streams.info(DLQ_STREAM)).state.last_seq;
    const rejectedBefore = await metric(
      'fleetheal_gateway_rejected_messages_total{source="event"}',
    );
    const snapshotsRejectedBefore = await metric(
      'fleetheal_gateway_rejected_messages_total{source="snapshot"}',
    );

    // Well under NATS's 1 MB, so only the contract can refuse it.
    const event = containerEvent({ host: HOST, action: "unhealthy" });
    const oversized = {
      ...event,
      container: {
        ...event.container,
        labels: { autoheal: "true", "autoheal.note": "x".repeat(MAX_LABEL_VALUE + 1) },
      },
    };
    expect(ContainerEvent.safeParse(oversized).success).toBe(false);
    const subject = eventSubject(HOST, event.container.id, "unhealthy");
    const payload = encode(oversized);
    await jetstream(asHost).publish(subject, payload);
    // Stored in the host's own events stream first; the handlers read the copy that
    // FLEETHEAL_EVENTS sources, under FLEETHEAL_EVENTS's sequence.
    const storedSeq = await waitFor(
      async () => {
        const m = await jsm.streams
          .getMessage(EVENTS_STREAM, { last_by_subj: subject })
          .catch(() => null);
        return m && Buffer.from(m.data).equals(Buffer.from(payload)) ? m.seq : undefined;
      },
      { timeoutMs: 15_000, message: "the oversized event never reached FLEETHEAL_EVENTS" },
    );

    // Handlers: dead-lettered with the contract's reason.
    const letter = await waitFor(
      async () => {
        const info = await jsm.streams.info(DLQ_STREAM);
        for (let seq = dlqBefore + 1; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(DLQ_STREAM, { seq }).catch(() => undefined);
          if (m?.header.get(DEAD_LETTER_HEADERS.streamSeq) === String(storedSeq)) return m;
        }
        return undefined;
      },
      { timeoutMs: 20_000, message: "the handler never dead-lettered the oversized event" },
    );
    expect(letter.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(
      /FLEETHEAL_ERR_SCHEMA.*container\.labels\.autoheal\.note/,
    );

    // Gateway: skipped, counted, and not in the API.
    await waitFor(
      async () =>
        (await metric('fleetheal_gateway_rejected_messages_total{source="event"}')) >
        rejectedBefore,
      { timeoutMs: 15_000, message: "the gateway never counted the oversized event" },
    );
    const events = await (
      await fetch(`${fleet.gateway.url}/events?host=${HOST}&container=${event.container.id}`)
    ).text();
    expect(events).not.toContain("xxxxxxxxxx");

    // A snapshot with too many labels, stored under the host's own key: refused by the gateway.
    const snapshot = hostSnapshot({ host: HOST, containers: [containerSnapshot()] });
    const many = Object.fromEntries(
      Array.from({ length: MAX_LABELS + 1 }, (_, n) => [`autoheal.k${n}`, "v"]),
    );
    const bad = {
      ...snapshot,
      seq: 1_000_000,
      containers: [{ ...snapshot.containers[0], labels: many }],
    };
    await jetstream(asHost).publish(`$KV.${HOSTS_BUCKET}.${HOST}`, encode(bad));
    await waitFor(
      async () =>
        (await metric('fleetheal_gateway_rejected_messages_total{source="snapshot"}')) >
        snapshotsRejectedBefore,
      { timeoutMs: 15_000, message: "the gateway never refused the oversized snapshot" },
    );
    // Logged with the contract's reason (the log reaches the test after the metric).
    await waitFor(
      () =>
        fleet.gateway.json.some(
          (l) => l.msg === "rejected host snapshot" && /more than 64 labels/.test(String(l.err)),
        ),
      { timeoutMs: 5_000, message: "the gateway never logged why it refused the snapshot" },
    );
    expect(exited).toEqual([]);
  });

  it("a snapshot too large for NATS goes out without labels, and with them again once it fits", async () => {
    // 70 containers with 16 KB of labels each, all within the limits: 1.1 MB of snapshot.
    const ids: string[] = [];
    await ensureBusyboxImage(host.engine);
    for (let n = 0; n < 70; n++) {
      const c = await host.engine.docker.createContainer({
        name: `many-${n}`,
        Image: TEST_IMAGE,
        Cmd: ["true"],
        Labels: padLabels("own", 4),
        HostConfig: { NetworkMode: "none" },
      });
      ids.push(c.id);
    }
    const bare = await waitFor(
      async () => {
        const res = await fetch(`${fleet.gateway.url}/containers/${HOST}/many-69`);
        if (res.status !== 200) return undefined;
        const body = (await res.json()) as {
          container: { labels: Record<string, string>; labelsCut?: { dropped: number } };
        };
        return Object.keys(body.container.labels).length === 0 ? body : undefined;
      },
      { timeoutMs: 30_000, message: "the host's snapshot never went out without labels" },
    );
    expect(bare.container.labelsCut?.dropped).toBeGreaterThan(0);
    const hosts = (await (await fetch(`${fleet.gateway.url}/hosts`)).json()) as {
      hosts: { id: string; status: string }[];
    };
    expect(hosts.hosts.find((h) => h.id === HOST)?.status).toBe("up");
    expect(
      host.agent.json.filter((l) => String(l.msg).startsWith("NATS refuses the host snapshot")),
    ).toHaveLength(1);

    for (const id of ids) await host.engine.docker.getContainer(id).remove({ force: true });
    await host.engine.docker.createContainer({
      name: "after",
      Image: TEST_IMAGE,
      Cmd: ["true"],
      Labels: { autoheal: "true" },
      HostConfig: { NetworkMode: "none" },
    });
    await waitFor(
      async () => {
        const res = await fetch(`${fleet.gateway.url}/containers/${HOST}/after`);
        if (res.status !== 200) return false;
        const body = (await res.json()) as { container: { labels: Record<string, string> } };
        return body.container.labels.autoheal === "true";
      },
      { timeoutMs: 30_000, message: "the host's snapshot never carried labels again" },
    );
    expect(host.agent.json.some((l) => String(l.msg).startsWith("the host snapshot fits"))).toBe(
      true,
    );
    expect(exited).toEqual([]);
  });
});
