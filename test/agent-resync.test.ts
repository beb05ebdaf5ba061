// Level-triggered healing on real parts: one nats-server, one dockerd, one agent started through
// the CLI with a resync interval of 1.5 s. A container that stays unhealthy is re-asserted with
// `source: "resync"`, since its first unhealthy event and with its check's output; a check that
// prints control characters shows them escaped; and with FLEETHEAL_LABEL=all a container labelled
// `autoheal=False` is left alone, commands included.

import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CommandReply,
  type ContainerEvent,
  ContainerEvent as ContainerEventSchema,
  commandSubject,
} from "../contracts/index.js";
import { signedCommand } from "./support/command-signing.js";
import { execOk, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import { restartDraft } from "./support/fixtures.js";
import { type Fleet, startFleet } from "./support/fleet.js";
import type { FleetProcess } from "./support/fleetheal.js";
import { type HostWatch, watchHost } from "./support/host-watch.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "resync-host";
const RESYNC_MS = 1_500;

let fleet: Fleet;
let engine: DockerEngine;
let client: NatsConnection;
let agent: FleetProcess;
let watch: HostWatch;

beforeAll(async () => {
  // The streams exist before any agent starts, as the handler of a deployment creates them.
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: HOST, agent: false }],
    handlers: 0,
    streams: true,
  });
  engine = fleet.host(HOST).engine;
  client = await fleet.nats.connect({ name: "resync-test-reader" });
  watch = await watchHost(client, HOST);
  agent = await fleet.startAgent(HOST, {
    env: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
  });
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/**
 * A test container whose Docker HEALTHCHECK runs the shell command `check` every 500 ms,
 * unhealthy after one failure; /tmp/healthy exists at its start.
 */
async function runChecked(
  name: string,
  check: string,
  labels: Record<string, string>,
): Promise<string> {
  return (await runTestContainer(engine, { name, labels, healthcheckCommand: check })).id;
}

/** Every event received so far. */
const events = () => watch.events.map((r) => r.event);

/** Waits for an event of container `id` that `match` accepts. */
function eventOf(
  id: string,
  what: string,
  match: (e: ContainerEvent) => boolean,
  timeoutMs = 30_000,
): Promise<ContainerEvent> {
  return waitFor(() => events().find((e) => e.container.id === id && match(e)), {
    timeoutMs,
    intervalMs: 50,
    message: () =>
      `no ${what}; got for this container: [${events()
        .filter((e) => e.container.id === id)
        .map((e) => `${e.action}/${e.source}`)
        .join(", ")}]; undecodable: ${watch.undecodable.length}`,
  });
}

/** The re-assertions of container `id` received so far. */
const resyncsOf = (id: string) =>
  events().filter((e) => e.container.id === id && e.source === "resync");

describe("agent resync", () => {
  it("re-asserts a container that stays unhealthy, since its first unhealthy event, with the output", async () => {
    const id = await runChecked(
      "resync-stays-unhealthy",
      'if [ -f /tmp/healthy ]; then echo ok; else echo "not ready: /tmp/healthy is missing"; exit 1; fi',
      { autoheal: "true" },
    );
    const healthy = await eventOf(
      id,
      "healthy event from Docker",
      (e) => e.action === "healthy" && e.source === "docker",
    );
    expect(healthy.healthOutput).toBe("ok");
    expect(healthy.unhealthySince).toBeUndefined();
    await execOk(engine, id, ["rm", "-f", "/tmp/healthy"]);
    const first = await eventOf(
      id,
      "unhealthy event from Docker",
      (e) => e.action === "unhealthy" && e.source === "docker",
    );
    expect(first.unhealthySince).toBe(first.time);
    expect(first.healthOutput).toBe("not ready: /tmp/healthy is missing");

    // Docker says nothing more; the agent re-asserts it every resync interval.
    await waitFor(() => resyncsOf(id).length >= 2, {
      timeoutMs: 10 * RESYNC_MS + 15_000,
      intervalMs: 100,
      message: () => `fewer than 2 resync events: ${JSON.stringify(resyncsOf(id))}`,
    });
    const [one, two] = resyncsOf(id);
    for (const resync of [one, two]) {
      expect(resync).toMatchObject({
        action: "unhealthy",
        source: "resync",
        unhealthySince: first.time,
        healthOutput: "not ready: /tmp/healthy is missing",
        container: { id, name: "resync-stays-unhealthy", optedIn: true },
      });
      expect(Date.parse(resync?.time ?? "")).toBeGreaterThan(Date.parse(first.time));
    }
    expect(one?.id).not.toBe(two?.id);

    // They are stored in the events stream, where the handlers read them.
    const stored = await readStored(
      client,
      `fleetheal.v1.evt.${HOST}.${id}.unhealthy`,
      ContainerEventSchema,
    );
    expect(stored.filter((e) => e.source === "resync").length).toBeGreaterThanOrEqual(2);

    // Healthy again: no more re-assertions.
    await execOk(engine, id, ["touch", "/tmp/healthy"]);
    const back = await eventOf(
      id,
      "healthy event after the repair",
      (e) => e.action === "healthy" && Date.parse(e.time) > Date.parse(first.time),
    );
    expect(back.unhealthySince).toBeUndefined();
    // A witness that stays unhealthy is re-asserted twice more meanwhile; this one no more (one
    // re-assertion may have been under way as the repair happened).
    const witness = await runChecked("resync-witness", "exit 1", { autoheal: "true" });
    const afterRepair = (e: ContainerEvent) => Date.parse(e.time) > Date.parse(back.time);
    await waitFor(() => resyncsOf(witness).filter(afterRepair).length >= 2, {
      timeoutMs: 10 * RESYNC_MS + 15_000,
      intervalMs: 100,
      message: "the witness was not re-asserted twice",
    });
    expect(resyncsOf(id).filter(afterRepair).length).toBeLessThanOrEqual(1);
  });

  it("escapes control characters in the health check's output", async () => {
    const id = await runChecked(
      "resync-control-characters",
      "printf '\\033[31mred\\001\\r\\nsecond line\\r\\n'; exit 1",
      { autoheal: "true" },
    );
    const unhealthy = await eventOf(
      id,
      "unhealthy event from Docker",
      (e) => e.action === "unhealthy" && e.source === "docker",
    );
    const escaped = "\\u001b[31mred\\u0001\\u000d\nsecond line";
    expect(unhealthy.healthOutput).toBe(escaped);
    const resync = await eventOf(
      id,
      "resync event",
      (e) => e.source === "resync",
      10 * RESYNC_MS + 15_000,
    );
    expect(resync.healthOutput).toBe(escaped);
    // The snapshot shows the same output, made by the same function.
    await waitFor(
      () => watch.snapshot()?.containers.find((c) => c.id === id)?.lastHealthOutput === escaped,
      {
        timeoutMs: 30_000,
        message: () =>
          `snapshot output: ${JSON.stringify(watch.snapshot()?.containers.find((c) => c.id === id))}`,
      },
    );
  });

  it("watching all, leaves a container labelled autoheal=False alone and takes an unlabelled one", async () => {
    agent = await fleet.restart(agent, { env: { FLEETHEAL_LABEL: "all" } });
    const check = "echo failing; exit 1";
    const optedOut = await runChecked("resync-opted-out", check, { autoheal: " False " });
    const unlabelled = await runChecked("resync-unlabelled", check, {});

    const taken = await eventOf(
      unlabelled,
      "resync event for the unlabelled container",
      (e) => e.source === "resync",
      10 * RESYNC_MS + 15_000,
    );
    expect(taken.container.optedIn).toBe(true);
    const left = await eventOf(
      optedOut,
      "unhealthy event from Docker",
      (e) => e.action === "unhealthy",
    );
    expect(left.container.optedIn).toBe(false);
    expect(left.container.labels).toEqual({ autoheal: " False " });

    // Two more re-assertions of the unlabelled one: the opted-out one had as many chances.
    const seen = resyncsOf(unlabelled).length;
    await waitFor(() => resyncsOf(unlabelled).length >= seen + 2, {
      timeoutMs: 10 * RESYNC_MS + 15_000,
      intervalMs: 100,
      message: "the unlabelled container was not re-asserted again",
    });
    const ofOptedOut = events().filter((e) => e.container.id === optedOut);
    expect(ofOptedOut.every((e) => !e.container.optedIn)).toBe(true);
    expect(resyncsOf(optedOut)).toEqual([]);
    await waitFor(
      () => watch.snapshot()?.containers.find((c) => c.id === optedOut)?.optedIn === false,
      {
        timeoutMs: 30_000,
        message: "the snapshot never showed the container opted out",
      },
    );

    // The agent refuses to restart it, whoever asks.
    const { payload, headers } = signedCommand(
      restartDraft({
        commandId: "resync-opted-out-restart-0001",
        host: HOST,
        containerId: optedOut,
        reason: "unhealthy",
        requestedBy: "handler:heal",
      }),
    );
    const answer = await client.request(commandSubject(HOST, "restart"), payload, {
      timeout: 30_000,
      headers,
    });
    const reply = CommandReply.parse(JSON.parse(new TextDecoder().decode(answer.data)));
    expect(reply).toMatchObject({ outcome: "refused", code: "not-opted-in" });
    const inspected = await engine.docker.getContainer(optedOut).inspect();
    expect(inspected.RestartCount).toBe(0);
  });
});
