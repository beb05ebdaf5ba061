// The gateway's NATS ports on real parts: manual restarts through a real agent and dockerd,
// release from quarantine, the stored policy, and the events stream read as history and live.

import type { KV } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { type FleetJetStream, openFleetJetStream } from "../common/jetstream-resources.js";
import { createLogger } from "../common/logger.js";
import { releaseFromQuarantine } from "../common/quarantine-release.js";
import {
  type ContainerEvent,
  type ContainerSnapshot,
  commandSubject,
  containerKey,
  DEFAULT_HEAL_POLICY,
  decode,
  EVENTS_STREAM,
  encode,
  eventSubject,
  LedgerEntry,
  POLICY_KEY,
  RemediationRecord,
  remediationSubject,
} from "../contracts/index.js";
import { ApiError } from "../gateway/http/api-errors.js";
import type { StreamRecord } from "../gateway/http/api-schemas.js";
import { NatsEventLog } from "../gateway/nats/nats-event-log.js";
import { NatsFleetControl } from "../gateway/nats/nats-fleet-control.js";
import type { Actor } from "../gateway/nats/ports.js";
import { testSigningKey } from "./support/command-signing.js";
import { type DockerEventRecorder, runTestContainer } from "./support/containers.js";
import type { DockerEngine } from "./support/dockerd.js";
import {
  containerEvent,
  containerSnapshot,
  ledgerEntry as fixtureLedgerEntry,
  remediationRecord,
} from "./support/fixtures.js";
import { createHostEventStreams, type Fleet, startFleet } from "./support/fleet.js";
import { readStored } from "./support/stream.js";
import { waitFor } from "./support/wait.js";

const HOST = "gw-host";
const ACTOR: Actor = { name: "gateway:admin", address: "192.0.2.7" };
const log = createLogger("test", { FLEETHEAL_LOG_LEVEL: "silent" });
/** The gateway's signing key: the one the agent started by startRole trusts. */
const signing = { key: testSigningKey().key, ttlMs: 30_000 };

let fleet: Fleet;
let engine: DockerEngine;
let recorder: DockerEventRecorder;
let client: NatsConnection;
let fjs: FleetJetStream;
let control: NatsFleetControl;
let events: NatsEventLog;
const rejected: string[] = [];
let optedIn: ContainerSnapshot;
let notOptedIn: ContainerSnapshot;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: HOST, agent: false }],
    handlers: 0,
    streams: true,
    heartbeatMs: 5_000,
  });
  ({ engine, docker: recorder } = fleet.host(HOST));
  client = await fleet.nats.connect({ name: "gateway-control-test" });
  fjs = await openFleetJetStream(client);
  // The hosts whose events the history tests publish, without an agent (or a handler to make
  // their streams once an agent writes its snapshot).
  await createHostEventStreams(client, ["hist-a", "hist-b", "live-a", "live-b", "live-r"]);
  const mine = await runTestContainer(engine, { name: "mine", labels: { autoheal: "true" } });
  const other = await runTestContainer(engine, { name: "not-mine" });
  optedIn = containerSnapshot({ ...mine, optedIn: true });
  notOptedIn = containerSnapshot({ ...other, optedIn: false });
  await fleet.startAgent(HOST, { name: "agent" });
  control = new NatsFleetControl({
    nc: client,
    fjs,
    commandTimeoutMs: 15_000,
    commandSigning: signing,
    log,
  });
  events = new NatsEventLog({
    js: fjs.js,
    jsm: fjs.jsm,
    log,
    onRejected: (reason) => rejected.push(reason),
  });
  fleet.defer(() => events.stop());
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

async function startedAt(id: string): Promise<string> {
  return (await engine.docker.getContainer(id).inspect()).State.StartedAt;
}

async function remediations(host: string, containerId: string): Promise<RemediationRecord[]> {
  return readStored(client, `fleetheal.v1.act.${host}.${containerId}.>`, RemediationRecord);
}

/** Expects `promise` to reject with an ApiError of `code`, and returns it. */
async function apiError(promise: Promise<unknown>, code: string): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  expect((error as ApiError).code).toBe(code);
  return error as ApiError;
}

describe("manual restart", () => {
  it("restarts an opted-in container once per idempotency key and audits it", async () => {
    const before = await startedAt(optedIn.id);
    const restartsBefore = recorder.count((e) => e.id === optedIn.id && e.action === "restart");
    const request = {
      host: HOST,
      container: optedIn,
      reason: "stuck connection pool",
      actor: ACTOR,
      idempotencyKey: "key-1",
    };
    const first = await control.restart(request);
    expect(first).toMatchObject({ outcome: "restarted", code: "restarted", duplicate: false });
    expect(first.commandId).toMatch(/^manual-[0-9a-f]{24}$/);
    expect(first.remediationId).toBe(`manual:${first.commandId}`);
    expect(await startedAt(optedIn.id)).not.toBe(before);

    const again = await control.restart(request);
    expect(again).toMatchObject({
      outcome: "restarted",
      duplicate: true,
      commandId: first.commandId,
    });
    await recorder.waitFor(
      (e) => e.id === optedIn.id && e.action === "restart",
      10_000,
      "Docker reported no restart",
    );
    expect(recorder.count((e) => e.id === optedIn.id && e.action === "restart")).toBe(
      restartsBefore + 1,
    );

    const records = await waitFor(
      async () => {
        const all = (await remediations(HOST, optedIn.id)).filter(
          (r) => r.remediationId === first.remediationId,
        );
        return all.length >= 2 ? all : undefined;
      },
      { timeoutMs: 5_000, message: "the restart was not audited" },
    );
    // The retry's records carry the same ids, so the stream's dedup window dropped them.
    expect(records.map((r) => r.phase)).toEqual(["restarting", "restarted"]);
    for (const r of records) {
      expect(r).toMatchObject({
        code: "by-hand",
        actor: ACTOR.name,
        commandId: first.commandId,
        containerName: "mine",
      });
    }
    expect(records[0]?.message).toContain(ACTOR.address);
    expect(records[0]?.message).toContain("stuck connection pool");

    // Another key is another command.
    const other = await control.restart({ ...request, idempotencyKey: "key-2" });
    expect(other.commandId).not.toBe(first.commandId);
    expect(other.duplicate).toBe(false);
  });

  it("returns the agent's refusal for a container that has not opted in", async () => {
    const result = await control.restart({
      host: HOST,
      container: notOptedIn,
      reason: "try",
      actor: ACTOR,
    });
    expect(result).toMatchObject({ outcome: "refused", code: "not-opted-in", duplicate: false });
    const records = (await remediations(HOST, notOptedIn.id)).filter(
      (r) => r.remediationId === result.remediationId,
    );
    expect(records.map((r) => [r.phase, r.code])).toEqual([
      ["restarting", "by-hand"],
      ["failed", "not-opted-in"],
    ]);
  });

  it("reports a command the agent refuses unexecuted (a key it does not trust)", async () => {
    const before = await startedAt(optedIn.id);
    const stranger = new NatsFleetControl({
      nc: client,
      fjs,
      commandTimeoutMs: 15_000,
      commandSigning: {
        key: commandSigningKeyFromSeed(generateCommandSigningSeed()),
        ttlMs: 30_000,
      },
      log,
    });
    const error = await apiError(
      stranger.restart({ host: HOST, container: optedIn, reason: "x", actor: ACTOR }),
      "FLEETHEAL_ERR_COMMAND_REFUSED",
    );
    expect(error.status).toBe(502);
    expect(error.message).toMatch(
      new RegExp(
        `^the agent of host ${HOST} refused the command: untrusted-key: O[A-Z2-7]{55} is not in FLEETHEAL_COMMAND_KEYS$`,
      ),
    );
    expect(error.details).toEqual({ refusal: "untrusted-key" });
    const last = (await remediations(HOST, optedIn.id)).at(-1);
    expect([last?.phase, last?.code]).toEqual(["failed", "command-refused"]);
    // Docker's own word: the container was not restarted.
    expect(await startedAt(optedIn.id)).toBe(before);
  });

  it("reports a host without an agent as unavailable", async () => {
    const ghost = containerSnapshot({ id: "a".repeat(64), name: "ghost" });
    const error = await apiError(
      control.restart({ host: "ghost-host", container: ghost, reason: "x", actor: ACTOR }),
      "FLEETHEAL_ERR_UNAVAILABLE",
    );
    expect(error.message).toBe("the agent of host ghost-host is not reachable");
    const records = await remediations("ghost-host", ghost.id);
    expect(records.map((r) => [r.phase, r.code])).toEqual([
      ["restarting", "by-hand"],
      ["failed", "no-responders"],
    ]);
  });

  it("reports an agent that does not answer in time, and one that rejects the command", async () => {
    const silent = client.subscribe(commandSubject("slow-host", "restart"), { callback: () => {} });
    const rejecting = client.subscribe(commandSubject("picky-host", "restart"), {
      callback: (_error, msg) => {
        const h = natsHeaders();
        h.set("Nats-Service-Error-Code", "400");
        h.set("Nats-Service-Error", "request does not match its schema");
        msg.respond(undefined, { headers: h });
      },
    });
    await client.flush();
    try {
      const quick = new NatsFleetControl({
        nc: client,
        fjs,
        commandTimeoutMs: 300,
        commandSigning: signing,
        log,
      });
      const container = containerSnapshot({ id: "b".repeat(64), name: "slow" });
      const timeout = await apiError(
        quick.restart({ host: "slow-host", container, reason: "x", actor: ACTOR }),
        "FLEETHEAL_ERR_AGENT_TIMEOUT",
      );
      expect(timeout.status).toBe(504);
      expect((await remediations("slow-host", container.id)).at(-1)?.code).toBe("timeout");

      const bad = await apiError(
        quick.restart({ host: "picky-host", container, reason: "x", actor: ACTOR }),
        "FLEETHEAL_ERR_BAD_REQUEST",
      );
      expect(bad.message).toBe("request does not match its schema");
      expect((await remediations("picky-host", container.id)).at(-1)?.phase).toBe("failed");
    } finally {
      silent.unsubscribe();
      rejecting.unsubscribe();
    }
  });
});

describe("release from quarantine", () => {
  const quarantine = (id: string): LedgerEntry =>
    fixtureLedgerEntry({
      host: HOST,
      containerId: id,
      consecutiveRestarts: 3,
      quarantine: { since: new Date().toISOString(), reason: "budget spent" },
    });

  async function ledgerEntry(id: string): Promise<LedgerEntry | undefined> {
    const entry = await fjs.ledger.get(containerKey(HOST, id));
    if (entry?.operation !== "PUT") return undefined;
    const decoded = decode(LedgerEntry, entry.value);
    return decoded.ok ? decoded.value : undefined;
  }

  it("releases a quarantined container and refuses one that is not", async () => {
    await fjs.ledger.put(containerKey(HOST, optedIn.id), encode(quarantine(optedIn.id)));
    const { releasedAt } = await control.release({
      host: HOST,
      container: optedIn,
      reason: "fixed the database",
      actor: ACTOR,
    });
    const entry = await ledgerEntry(optedIn.id);
    expect(entry?.quarantine).toBeUndefined();
    expect(entry).toMatchObject({ consecutiveRestarts: 0, releasedAt });
    const released = (await remediations(HOST, optedIn.id)).filter((r) => r.phase === "released");
    expect(released).toHaveLength(1);
    expect(released[0]).toMatchObject({ code: "by-hand", actor: ACTOR.name, at: releasedAt });
    expect(released[0]?.message).toContain("fixed the database");

    const error = await apiError(
      control.release({ host: HOST, container: optedIn, actor: ACTOR }),
      "FLEETHEAL_ERR_CONFLICT",
    );
    expect(error.message).toBe("mine on gw-host is not quarantined");
    // No ledger entry at all is "not quarantined" too.
    await apiError(
      control.release({ host: HOST, container: notOptedIn, actor: ACTOR }),
      "FLEETHEAL_ERR_CONFLICT",
    );
  });

  it("retries a lost compare-and-set, and re-checks the quarantine each time", async () => {
    const key = containerKey(HOST, optedIn.id);
    // A ledger whose first update loses a race against a handler writing the same entry.
    const racing = (write: (entry: LedgerEntry) => LedgerEntry): KV => {
      let raced = false;
      return new Proxy(fjs.ledger, {
        get(target, prop, receiver) {
          if (prop !== "update") return Reflect.get(target, prop, receiver);
          return async (k: string, data: Uint8Array, revision: number) => {
            if (!raced) {
              raced = true;
              await target.put(k, encode(write(quarantine(optedIn.id))));
            }
            return target.update(k, data, revision);
          };
        },
      });
    };
    const release = (ledger: KV) =>
      releaseFromQuarantine({
        ledger,
        records: fjs.records,
        host: HOST,
        container: optedIn,
        actor: "test",
        code: "by-hand",
        message: "test",
        now: new Date(),
      });

    await fjs.ledger.put(key, encode(quarantine(optedIn.id)));
    const won = await release(racing((e) => ({ ...e, lastTroubleAt: new Date().toISOString() })));
    expect(won.released).toBe(true);
    expect((await ledgerEntry(optedIn.id))?.lastTroubleAt).toBeDefined();
    expect((await ledgerEntry(optedIn.id))?.quarantine).toBeUndefined();

    await fjs.ledger.put(key, encode(quarantine(optedIn.id)));
    const lost = await release(racing(({ quarantine: _q, ...e }) => e));
    expect(lost).toEqual({ released: false, reason: "not-quarantined" });
  });
});

describe("policy", () => {
  it("reads the defaults, stores with compare-and-set, pauses, and reports an invalid policy", async () => {
    await fjs.config.purge(POLICY_KEY);
    expect(await control.getPolicy()).toEqual({ policy: DEFAULT_HEAL_POLICY, revision: 0 });

    const created = await control.putPolicy({ ...DEFAULT_HEAL_POLICY, dryRun: true }, 0);
    expect(created.revision).toBeGreaterThan(0);
    expect(await control.getPolicy()).toEqual(created);
    const exists = await apiError(
      control.putPolicy(DEFAULT_HEAL_POLICY, 0),
      "FLEETHEAL_ERR_PRECONDITION_FAILED",
    );
    expect(exists.details).toEqual({ currentRevision: created.revision });

    const updated = await control.putPolicy(
      { ...created.policy, restartOnExit: true },
      created.revision,
    );
    expect(updated.revision).toBeGreaterThan(created.revision);
    const stale = await apiError(
      control.putPolicy(DEFAULT_HEAL_POLICY, created.revision),
      "FLEETHEAL_ERR_PRECONDITION_FAILED",
    );
    expect(stale.status).toBe(412);
    expect(stale.details).toEqual({ currentRevision: updated.revision });
    const blind = await control.putPolicy({ ...updated.policy, dependents: false });
    expect(blind.revision).toBeGreaterThan(updated.revision);

    const paused = await control.setPaused(true);
    expect(paused.policy).toEqual({ ...blind.policy, paused: true });
    expect((await control.getPolicy()).policy.paused).toBe(true);
    // Concurrent edits each win in turn; none is lost to a conflict.
    const all = await Promise.all([true, false, true, false].map((p) => control.setPaused(p)));
    expect(new Set(all.map((d) => d.revision)).size).toBe(4);
    const final = await control.getPolicy();
    expect(final.revision).toBe(Math.max(...all.map((d) => d.revision)));
    expect(final.policy.restartOnExit).toBe(true);

    const invalidRevision = await fjs.config.put(
      POLICY_KEY,
      encode({ paused: "yes", budget: { restarts: 0 } }),
    );
    const invalid = await apiError(control.getPolicy(), "FLEETHEAL_ERR_CONFLICT");
    expect(invalid.message).toMatch(/invalid.*PUT/);
    expect(invalid.details).toMatchObject({ currentRevision: invalidRevision });
    await apiError(control.setPaused(false), "FLEETHEAL_ERR_CONFLICT");
    // Unknown fields are invalid too, not dropped: a JetStream ack stored as the policy is not
    // read as the defaults.
    const echoedRevision = await fjs.config.put(
      POLICY_KEY,
      encode({ stream: "FLEETHEAL_EVENTS", seq: 1 }),
    );
    const echoed = await apiError(control.getPolicy(), "FLEETHEAL_ERR_CONFLICT");
    expect(echoed.details).toMatchObject({
      currentRevision: echoedRevision,
      issues: [{ path: "(root)", message: 'Unrecognized keys: "stream", "seq"' }],
    });
    const repaired = await control.putPolicy(DEFAULT_HEAL_POLICY, echoedRevision);
    expect(await control.getPolicy()).toEqual(repaired);

    // With no policy stored, pausing stores the defaults, paused.
    await fjs.config.delete(POLICY_KEY);
    expect((await control.getPolicy()).revision).toBe(0);
    const fresh = await control.setPaused(true);
    expect(fresh.policy).toEqual({ ...DEFAULT_HEAL_POLICY, paused: true });
  });
});

describe("without NATS", () => {
  it("answers 503 rather than 500", async () => {
    const nc = await connect({ servers: fleet.nats.server.url, name: "gateway-control-closed" });
    const closedFjs = await openFleetJetStream(nc);
    await nc.close();
    const closed = new NatsFleetControl({
      nc,
      fjs: closedFjs,
      commandTimeoutMs: 1_000,
      commandSigning: signing,
      log,
    });
    const closedLog = new NatsEventLog({ js: closedFjs.js, jsm: closedFjs.jsm, log });
    await apiError(closed.getPolicy(), "FLEETHEAL_ERR_UNAVAILABLE");
    await apiError(closed.setPaused(true), "FLEETHEAL_ERR_UNAVAILABLE");
    await apiError(closed.putPolicy(DEFAULT_HEAL_POLICY), "FLEETHEAL_ERR_UNAVAILABLE");
    await apiError(
      closed.release({ host: HOST, container: optedIn, actor: ACTOR }),
      "FLEETHEAL_ERR_UNAVAILABLE",
    );
    await apiError(
      closed.restart({ host: HOST, container: optedIn, reason: "x", actor: ACTOR }),
      "FLEETHEAL_ERR_UNAVAILABLE",
    );
    await apiError(closedLog.read({ limit: 10 }, Date.now()), "FLEETHEAL_ERR_UNAVAILABLE");
  });
});

describe("events", () => {
  // Container ids are hex.
  const C1 = "c1".repeat(6);
  const C2 = "c2".repeat(6);
  const C3 = "c3".repeat(6);
  const te = new TextEncoder();

  function event(host: string, cid: string, action: "start" | "die"): ContainerEvent {
    return containerEvent({ host, action, container: { id: cid, name: `n-${cid}` } });
  }

  function remediation(host: string, cid: string, n: number): RemediationRecord {
    return remediationRecord({
      id: `test:${host}:${cid}:${n}`,
      remediationId: `test:${host}:${cid}:${n}`,
      host,
      containerId: cid,
      containerName: `n-${cid}`,
      code: "cooldown",
      message: "test",
    });
  }

  let published = 0;
  /**
   * Publishes, and returns the message's sequence in FLEETHEAL_EVENTS once it is there: a
   * host's event is stored in the host's own stream first, and sourced from there.
   */
  async function publishStored(subject: string, data: Uint8Array): Promise<number> {
    const msgID = `gateway-control-${++published}`;
    const ack = await fjs.js.publish(subject, data, { msgID });
    if (ack.stream === EVENTS_STREAM) return ack.seq;
    return waitFor(
      async () => {
        const m = await fjs.jsm.streams
          .getMessage(EVENTS_STREAM, { last_by_subj: subject })
          .catch(() => null);
        return m?.header?.get("Nats-Msg-Id") === msgID ? m.seq : undefined;
      },
      { timeoutMs: 10_000, message: `${subject} never reached ${EVENTS_STREAM}` },
    );
  }

  /** Publishes events and remediations alternately: e, r, e, r, … and returns their seqs. */
  async function publishMix(host: string, cid: string, count: number): Promise<number[]> {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      seqs.push(
        i % 2 === 0
          ? await publishStored(eventSubject(host, cid, "start"), encode(event(host, cid, "start")))
          : await publishStored(
              remediationSubject(host, cid, "skipped"),
              encode(remediation(host, cid, i)),
            ),
      );
    }
    return seqs;
  }

  const seqsOf = (records: StreamRecord[]) => records.map((r) => r.seq);
  // The agent publishes too (health events of the restarted container), whenever it likes.
  const ofHosts = (records: StreamRecord[], prefix: string) =>
    records.filter((r) => r.subject.split(".")[3]?.startsWith(prefix));

  it("reads history by host, container, kind, since and after, in pages", async () => {
    const now = Date.now();
    const a1 = await publishMix("hist-a", C1, 6);
    const a2 = await publishMix("hist-a", C2, 2);
    const b1 = await publishMix("hist-b", C1, 2);
    // A record that does not match its contract is skipped and counted.
    await publishStored(eventSubject("hist-a", C1, "start"), te.encode("{not json"));

    const all = await events.read({ host: "hist-a", limit: 100 }, now);
    expect(seqsOf(all.records)).toEqual([...a1, ...a2]);
    expect(all.next).toBeUndefined();
    expect(rejected).toHaveLength(1);
    const first = all.records[0];
    expect(first?.kind).toBe("event");
    expect(first?.subject).toBe(`fleetheal.v1.evt.hist-a.${C1}.start`);
    expect(Date.parse(first?.storedAt ?? "")).toBeGreaterThanOrEqual(now - 1_000);

    const c1 = await events.read({ host: "hist-a", container: C1, limit: 100 }, now);
    expect(seqsOf(c1.records)).toEqual(a1);
    const anyHostC1 = await events.read({ container: C1, limit: 100 }, now);
    expect(seqsOf(anyHostC1.records)).toEqual([...a1, ...b1]);
    const remediationsOnly = await events.read(
      { host: "hist-a", kind: "remediation", limit: 100 },
      now,
    );
    expect(remediationsOnly.records.every((r) => r.kind === "remediation")).toBe(true);
    expect(seqsOf(remediationsOnly.records)).toEqual(
      [...a1, ...a2].filter((_, i) => [1, 3, 5, 7].includes(i)),
    );
    const eventsOnly = await events.read({ host: "hist-b", kind: "event", limit: 100 }, now);
    expect(eventsOnly.records).toHaveLength(1);
    expect(eventsOnly.records[0]).toMatchObject({ kind: "event", event: { host: "hist-b" } });

    // Pages of 3: each `next` continues exactly where the previous page stopped.
    const paged: number[] = [];
    let after: number | undefined;
    let pages = 0;
    do {
      const started = Date.now();
      const page = await events.read({ host: "hist-a", limit: 3, after }, now);
      // No page waits for records that are not there (2.9 overcounts pending, see HistorySource).
      expect(Date.now() - started).toBeLessThan(1_000);
      paged.push(...seqsOf(page.records));
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    expect(paged).toEqual([...a1, ...a2]);
    expect(pages).toBe(3);
    // A full page has a `next` even when it ends at the last record; the page after is empty.
    const exact = await events.read({ host: "hist-a", container: C2, limit: 2 }, now);
    expect(exact.next).toBe(a2.at(-1));
    expect(
      await events.read({ host: "hist-a", container: C2, limit: 2, after: exact.next }, now),
    ).toEqual({ records: [] });

    // `since` as a time: everything stored after it.
    const cut = Date.now() + 1;
    await waitFor(() => Date.now() > cut, { timeoutMs: 1_000, intervalMs: 1, message: "clock" });
    const later = await publishMix("hist-a", C3, 2);
    const sinceIso = await events.read(
      { host: "hist-a", since: new Date(cut).toISOString(), limit: 100 },
      Date.now(),
    );
    expect(seqsOf(sinceIso.records)).toEqual(later);
    // `since` as a duration back from `now`: nothing was stored in the 5 minutes before an
    // hour from now, all of it in the last hour.
    const future = Date.now() + 60 * 60 * 1000;
    expect(
      (await events.read({ host: "hist-a", since: "5m", limit: 100 }, future)).records,
    ).toEqual([]);
    expect(
      (await events.read({ host: "hist-a", since: "2h", limit: 100 }, future)).records,
    ).toHaveLength(a1.length + a2.length + later.length);
    // The default is the last hour.
    expect((await events.read({ host: "hist-a", limit: 100 }, future)).records).toEqual([]);
    // `after` wins over `since`.
    const afterWins = await events.read(
      { host: "hist-a", after: a2.at(-1), since: "1s", limit: 100 },
      future,
    );
    expect(seqsOf(afterWins.records)).toEqual(later);

    const bad = await apiError(
      events.read({ since: "yesterday", limit: 10 }, Date.now()),
      "FLEETHEAL_ERR_BAD_REQUEST",
    );
    expect(bad.message).toMatch(/duration.*ISO-8601/);
  });

  it("answers at once when nothing matches", async () => {
    const started = Date.now();
    const page = await events.read({ host: "nobody-here", limit: 100 }, Date.now());
    expect(page).toEqual({ records: [] });
    const beyond = await events.read({ after: 1_000_000, limit: 100 }, Date.now());
    expect(beyond).toEqual({ records: [] });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("fans one live consumer out to every subscriber, each with its own filter", async () => {
    const stored = (await fjs.jsm.streams.info(EVENTS_STREAM)).state.last_seq;
    await events.start();
    const everything: StreamRecord[] = [];
    const hostA: StreamRecord[] = [];
    const remediationsOfC2: StreamRecord[] = [];
    const observed: StreamRecord[] = [];
    const stopAll = events.subscribe({}, (r) => everything.push(r));
    const stopA = events.subscribe({ host: "live-a", kind: "event" }, (r) => hostA.push(r));
    events.subscribe({ container: C2, kind: "remediation" }, (r) => remediationsOfC2.push(r));
    events.subscribe({}, () => {
      throw new Error("a broken listener");
    });
    events.subscribe({}, (r) => observed.push(r));

    const a = await publishMix("live-a", C1, 4);
    const b = await publishMix("live-b", C2, 4);
    await waitFor(
      () => ofHosts(everything, "live-").length >= 8 && ofHosts(observed, "live-").length >= 8,
      { timeoutMs: 5_000, message: () => `live records: ${seqsOf(everything).join(",")}` },
    );
    // Only records stored after the feed started: none of the history of the other tests.
    expect(everything.every((r) => r.seq > stored)).toBe(true);
    expect(seqsOf(ofHosts(everything, "live-"))).toEqual([...a, ...b]);
    expect(seqsOf(ofHosts(observed, "live-"))).toEqual([...a, ...b]);
    expect(seqsOf(hostA)).toEqual([a[0], a[2]]);
    expect(seqsOf(remediationsOfC2)).toEqual([b[1], b[3]]);

    stopA();
    const more = await publishMix("live-a", C1, 1);
    await waitFor(() => ofHosts(everything, "live-").length >= 9, {
      timeoutMs: 5_000,
      message: "no live record",
    });
    expect(seqsOf(ofHosts(everything, "live-")).at(-1)).toBe(more[0]);
    expect(hostA).toHaveLength(2);
    stopAll();
  });

  it("resumes the live feed after NATS restarts, without replaying history", async () => {
    const seen: StreamRecord[] = [];
    const stop = events.subscribe({ host: "live-r" }, (r) => seen.push(r));
    const before = await publishMix("live-r", C1, 2);
    await waitFor(() => seen.length >= 2, { timeoutMs: 5_000, message: "no live record" });
    // A feed that has delivered nothing yet when its consumer is lost is the case that would
    // replay the whole stream, had it started with DeliverPolicy.New.
    const quiet = new NatsEventLog({ js: fjs.js, jsm: fjs.jsm, log });
    fleet.defer(() => quiet.stop());
    const quietSeen: StreamRecord[] = [];
    quiet.subscribe({}, (r) => quietSeen.push(r));
    await quiet.start();

    await fleet.nats.server.restart();
    await waitFor(
      async () => {
        await client.flush();
        return true;
      },
      { timeoutMs: 15_000, message: "the client did not reconnect" },
    );
    // Publishing may race the reconnect; the stream dedups the retried ids.
    const after = await waitFor(
      async () => {
        const seqs: number[] = [];
        for (const n of [100, 101]) {
          const ack = await fjs.js.publish(
            remediationSubject("live-r", C1, "skipped"),
            encode(remediation("live-r", C1, n)),
            { msgID: `live-r-${n}` },
          );
          seqs.push(ack.seq);
        }
        return seqs;
      },
      { timeoutMs: 15_000, message: "could not publish after the restart" },
    );
    await waitFor(() => seen.length >= 4, {
      timeoutMs: 20_000,
      message: () => `live records after the restart: ${seqsOf(seen).join(",")}`,
    });
    expect(seqsOf(seen)).toEqual([...before, ...after]);
    await waitFor(() => ofHosts(quietSeen, "live-r").length >= 2, {
      timeoutMs: 5_000,
      message: "the quiet feed got nothing after the restart",
    });
    expect(quietSeen.every((r) => r.seq > (before.at(-1) ?? 0))).toBe(true);
    expect(seqsOf(ofHosts(quietSeen, "live-r"))).toEqual(after);
    stop();
  });
});
