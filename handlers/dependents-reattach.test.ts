import { describe, expect, it } from "vitest";
import {
  containerKey,
  encode,
  type MonitoredContainer,
  RECREATE_COMMAND_TYPE,
} from "../contracts/index.js";
import {
  c,
  compose,
  type Decide,
  HOST,
  idOf,
  ledgerOf,
  NEW_RUN,
  OPTIONS,
  onStart,
  play,
  reply,
  summary,
} from "../test/support/dependents-kit.js";
import { remediationRecord } from "../test/support/fixtures.js";
import type { InMemoryAgent, InMemoryHandlerIo } from "../test/support/in-memory-handler-io.js";
import { decideDependentsOnRecreate } from "./dependents-recreated.js";

const OLD_WEB = idOf("web-before-the-update");

/** heal's `recreated` record of web: its container is the old one. */
function recreatedRecord() {
  return remediationRecord({
    id: "heal:recreate-web:recreated",
    remediationId: "heal:recreate-web",
    host: HOST,
    containerId: OLD_WEB,
    containerName: "web",
    phase: "recreated",
    code: "recreated",
    message: "recreated",
    actor: "handler:heal",
    at: "2026-11-27T19:41:36.000Z",
    action: "recreate",
  });
}

/** web was recreated (new id, NEW_RUN); api and gluetun-style children still name the old id. */
function orphans() {
  const old = { networkMode: `container:${OLD_WEB}` };
  return [
    c("web", { startedAt: NEW_RUN, labels: compose("web") }),
    { ...c("api"), ...old },
    c("worker", { net: "api" }),
    c("db-client", { labels: compose("client", "web:service_started:false") }),
  ];
}

/** The agent: recreates for a recreate command (the new id from the old), restarts otherwise. */
const recreating: InMemoryAgent = (cmd) =>
  cmd.type === RECREATE_COMMAND_TYPE
    ? reply(cmd, {
        verb: "recreate",
        outcome: "recreated",
        code: "recreated",
        newContainerId: idOf(`${cmd.containerId}-new`),
      })
    : reply(cmd);

function remember(io: InMemoryHandlerIo, id: string, name: string): void {
  const monitored: MonitoredContainer = {
    v: 1,
    host: HOST,
    containerId: id,
    name,
    image: "busybox",
    firstSeenAt: "2026-11-27T19:00:00.000Z",
    lastStartedAt: "2026-11-27T19:00:00.000Z",
    starts: 1,
  };
  io.buckets.monitored.put(containerKey(HOST, id), encode(monitored));
}

describe("network children of a recreated parent", () => {
  it("recreates them onto the new parent after fleetheal's recreate, transitively", async () => {
    const { records, commands, io } = await play(orphans(), {
      decide: (ctx) => decideDependentsOnRecreate(recreatedRecord(), ctx, OPTIONS),
      answer: recreating,
    });
    expect(commands.map((x) => [x.type, x.containerId])).toEqual([
      ["fleetheal.cmd.v1.recreate", idOf("api")],
      ["fleetheal.cmd.v1.restart", idOf("db-client")],
      ["fleetheal.cmd.v1.recreate", idOf("worker")],
    ]);
    expect(commands[0]).toMatchObject({
      networkParent: idOf("web"),
      incident: "2026-11-27T19:30:01.5Z",
    });
    // worker is in api's namespace, and api was recreated: onto api's new container.
    expect(commands[2]).toMatchObject({ networkParent: idOf(`${idOf("api")}-new`) });
    expect(summary(records)).toEqual([
      "api restarting dependent",
      "api recreated recreated",
      "db-client restarting dependent",
      "db-client restarted restarted",
      "worker restarting dependent",
      "worker recreated recreated",
    ]);
    expect(records[0]).toMatchObject({ action: "recreate", triggerEventId: recreatedRecord().id });
    expect(records[0]?.message).toContain("which was recreated");
    expect((await ledgerOf(io, "api")).restarts[0]).toMatchObject({
      action: "recreate",
      outcome: "recreated",
    });
  });

  it("recreates them while the old parent is still listed, stopped under another name", async () => {
    // How the agent's recreate (and compose's) leaves the old container for a moment.
    const parked = c("web_parked", {
      id: OLD_WEB,
      state: "exited",
      startedAt: "2026-11-27T19:30:00Z",
    });
    const byRecord = await play([...orphans(), parked], {
      decide: (ctx) => decideDependentsOnRecreate(recreatedRecord(), ctx, OPTIONS),
      answer: recreating,
    });
    expect(byRecord.commands.filter((x) => x.type === RECREATE_COMMAND_TYPE)).toHaveLength(2);
    const { io } = await play([...orphans(), parked], { decide: async () => [] });
    remember(io, OLD_WEB, "web");
    const byStart = await play(undefined, { io, decide: onStart(), answer: recreating });
    expect(byStart.commands[0]).toMatchObject({
      containerId: idOf("api"),
      networkParent: idOf("web"),
    });
  });

  it("one round per new parent: the record's round after the start's records nothing more", async () => {
    const { io } = await play(orphans(), { decide: async () => [] });
    remember(io, OLD_WEB, "web");
    const first = await play(undefined, { io, decide: onStart(), answer: recreating });
    expect(first.commands).toHaveLength(3);
    // The old api and worker linger a moment, stopped, beside their successors.
    const after = orphans().map((x) => (x.name === "web" ? x : { ...x, state: "exited" as const }));
    const second = await play(after, {
      io,
      decide: (ctx) => decideDependentsOnRecreate(recreatedRecord(), ctx, OPTIONS),
      answer: recreating,
    });
    expect(summary(second.records)).toEqual([]);
  });

  it("waits while the snapshot shows no new container of that name, or one not started yet", async () => {
    const decide: Decide = (ctx) => decideDependentsOnRecreate(recreatedRecord(), ctx, OPTIONS);
    const stale = [
      c("web", { id: OLD_WEB, startedAt: "2026-11-27T19:30:00Z" }),
      c("api", { net: "web" }),
    ];
    expect((await play(stale, { decide })).outcome).toMatchObject({ kind: "retry" });
    const created = orphans().map((x) =>
      x.name === "web" ? { ...x, state: "created" as const } : x,
    );
    expect((await play(created, { decide })).outcome).toMatchObject({ kind: "retry" });
  });

  it("finds the children of a parent an update tool replaced, by the name fleetheal remembers", async () => {
    const unknown = await play(orphans(), { decide: onStart() });
    // Without knowing whose the old id was, only the compose dependent is followed.
    expect(unknown.commands.map((x) => x.containerId)).toEqual([idOf("db-client")]);

    const { io } = await play(orphans(), { decide: async () => [] });
    remember(io, OLD_WEB, "web");
    const known = await play(undefined, { io, decide: onStart(), answer: recreating });
    expect(known.commands.map((x) => [x.type, x.containerId])).toEqual([
      ["fleetheal.cmd.v1.recreate", idOf("api")],
      ["fleetheal.cmd.v1.restart", idOf("db-client")],
      ["fleetheal.cmd.v1.recreate", idOf("worker")],
    ]);
    expect(known.commands[0]).toMatchObject({ networkParent: idOf("web") });
  });

  it("finds them by compose: a child of the project that depends on the new parent's service", async () => {
    const containers = orphans().map((x) =>
      x.name === "web"
        ? { ...x, labels: { ...x.labels, ...compose("vpn") } }
        : x.name === "api"
          ? { ...x, labels: { ...x.labels, ...compose("app", "vpn:service_started:false") } }
          : x,
    );
    const { commands } = await play(containers, { decide: onStart() });
    expect(commands.map((x) => x.type)).toContain("fleetheal.cmd.v1.recreate");
  });
});
