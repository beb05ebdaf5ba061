// Which containers are healed (issue 17), on real parts: an agent watching every container
// (FLEETHEAL_LABEL=all) leaves one labelled `autoheal=False` alone; the fleet policy includes and
// excludes containers by name and image patterns; and healing switched off for one container at
// run time, through the gateway, stays off across a recreate of the container and restarts of
// the handler and the gateway, until it is switched on again. (test/healing-switch.test.ts covers
// the switch's storage, audit and API; this file covers what healing does with it.)

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealingSwitchResult } from "../gateway/http/api-schemas.js";
import {
  makeUnhealthy,
  runTestContainer,
  type TestContainerOptions,
  tagTestImage,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { dockerActions, type HealWatch, watchHeal } from "./support/heal-watch.js";
import { waitFor } from "./support/wait.js";

const RESYNC_MS = 1_500;
/** Beyond the resync interval: the decision and the restart, on two busy cores. */
const HEAL_WITHIN_MS = RESYNC_MS + 15_000;
const ADMIN_TOKEN = randomBytes(24).toString("base64url");
/** The hold codes of a container the policy's exclude list names, or its include list omits. */
const EXCLUDED = "excluded";
const NOT_INCLUDED = "not-included";
/** The hold code of a container whose healing was switched off. */
const DISABLED = "disabled";

let fleet: Fleet;
let host: FleetHost;
let watch: HealWatch;

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: [{ id: "sel", env: { FLEETHEAL_LABEL: "all" } }],
    gateway: { adminToken: ADMIN_TOKEN },
    env: {
      agent: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
      handler: { FLEETHEAL_MAX_EVENT_AGE_MS: "2000" },
    },
  });
  host = fleet.host("sel");
  watch = await watchHeal(fleet);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

type Container = { id: string; name: string };

/** Starts the containers at once, and waits until every one is healthy. */
async function healthy(...specs: TestContainerOptions[]): Promise<Container[]> {
  const started = await Promise.all(
    specs.map((s) =>
      runTestContainer(host.engine, { healthIntervalMs: 1_000, healthTimeoutMs: 30_000, ...s }),
    ),
  );
  await Promise.all(started.map((c) => waitForHealth(host.engine, c.id, "healthy", 30_000)));
  return started;
}

function restarts(c: Container): number {
  return dockerActions(host.docker, c.id, "restart").length;
}

function healed(c: Container, message: string): Promise<unknown> {
  return host.docker.waitFor(
    (e) => e.id === c.id && e.action === "restart",
    HEAL_WITHIN_MS,
    `${c.name}: ${message}`,
  );
}

/** Waits until the ledger holds the container with `code`, then through two more resyncs. */
async function staysHeld(c: Container, code: string): Promise<void> {
  const held = await watch.waitForNotHealing(
    host.id,
    c.id,
    (n) => n.reason === "held",
    20_000,
    `${c.name} was not held`,
  );
  expect(held.code, c.name).toBe(code);
  await watch.waitForResyncs(c.id, 2, RESYNC_MS * 2 + 15_000);
  expect(restarts(c), `${c.name} was restarted while held`).toBe(0);
}

/** `PUT /containers/:host/:id/healing` as an admin; the switch's state after it. */
async function switchHealing(c: Container, enabled: boolean): Promise<HealingSwitchResult> {
  const res = await fetch(`${fleet.gateway.url}/containers/${host.id}/${c.id}/healing`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ enabled, reason: "selection test" }),
  });
  const body: unknown = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return HealingSwitchResult.parse(body);
}

/** Removes the container and runs a new one under its name: a recreate, as compose does it. */
async function recreate(c: Container): Promise<Container> {
  await host.engine.docker.getContainer(c.id).remove({ force: true });
  const [next] = await healthy({ name: c.name });
  if (!next) throw new Error(`${c.name} was not recreated`);
  return next;
}

describe("selection", () => {
  it("watches every container but one labelled autoheal=False", async () => {
    const [watched, optedOut] = (await healthy(
      { name: "watched" },
      { name: "opted-out", labels: { autoheal: "False" } },
    )) as [Container, Container];
    await Promise.all([watched, optedOut].map((c) => makeUnhealthy(host.engine, c.id)));
    await healed(watched, "the unlabelled container was not healed in watch-all mode");

    const trigger = await waitFor(() => watch.events(optedOut.id, "unhealthy")[0], {
      timeoutMs: 20_000,
      message: "the agent did not report the opted-out container unhealthy",
    });
    expect(trigger.container.optedIn).toBe(false);
    const skipped = await watch.waitForRecord(
      optedOut.id,
      (r) => r.phase === "skipped",
      20_000,
      "no decision about the opted-out container",
    );
    expect(skipped.code).toBe("not-opted-in");
    // Not opted in: never re-asserted by the resync either.
    expect(watch.resyncs(optedOut.id)).toEqual([]);
    expect(restarts(optedOut)).toBe(0);
    expect(dockerActions(host.docker, optedOut.id, "kill")).toHaveLength(0);
  });

  it("includes and excludes containers by name and image pattern", async () => {
    await fleet.putPolicy({
      include: { names: [], images: ["fleetheal-test/*"] },
      exclude: { names: ["skip-*"], images: ["fleetheal-test/excluded:*"] },
    });
    const excludedImage = await tagTestImage(host.engine, "fleetheal-test/excluded:v1");
    const otherImage = await tagTestImage(host.engine, "elsewhere/app:v1");
    const [kept, byName, byImage, notIncluded] = (await healthy(
      { name: "kept" },
      { name: "skip-me" },
      { name: "excluded-image", image: excludedImage },
      { name: "not-included", image: otherImage },
    )) as [Container, Container, Container, Container];
    const all = [kept, byName, byImage, notIncluded];
    await Promise.all(all.map((c) => makeUnhealthy(host.engine, c.id)));
    await healed(kept, "the selected container was not healed");
    await Promise.all([
      staysHeld(byName, EXCLUDED),
      staysHeld(byImage, EXCLUDED),
      staysHeld(notIncluded, NOT_INCLUDED),
    ]);

    // The policy alone held them: without its lists they are healed at the next resync.
    await fleet.putPolicy({});
    await Promise.all(
      [byName, byImage, notIncluded].map((c) => healed(c, "not healed once selected again")),
    );
  });

  it("keeps healing switched off across a recreate and restarts of the handler and the gateway", async () => {
    let [c] = (await healthy({ name: "switched" })) as [Container];
    const off = await switchHealing(c, false);
    expect(off).toMatchObject({ host: host.id, name: "switched", enabled: false, changed: true });
    await makeUnhealthy(host.engine, c.id);
    await staysHeld(c, DISABLED);

    // A new container under the same name: still off.
    c = await recreate(c);
    await makeUnhealthy(host.engine, c.id);
    await staysHeld(c, DISABLED);

    // Every role that reads the switch starts again; a new container is decided by the new
    // handler, from the stored switch alone.
    const handler = fleet.handlers.at(-1);
    if (!handler) throw new Error("no handler");
    await fleet.restart(handler);
    await fleet.restart(fleet.gateway);
    c = await recreate(c);
    await makeUnhealthy(host.engine, c.id);
    await staysHeld(c, DISABLED);
    const on = await switchHealing(c, true);
    expect(on).toMatchObject({ enabled: true, changed: true });
    await healed(c, "not healed once healing was switched on again");
  });
});
