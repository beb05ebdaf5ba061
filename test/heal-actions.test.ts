// What heal does to an unhealthy container (issue 17), chosen by its `autoheal.action` label, on
// real parts: `stop` stops it, `notify` only alerts and leaves it running, `recreate` replaces it
// with a new container of the same configuration under the same name, and `recreate` with
// `autoheal.recreate.pull=true` pulls the tag again first, from a local registry. Docker's own
// event stream and inspect are the witnesses.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importTestImage } from "./support/busybox-image.js";
import {
  makeUnhealthy,
  runTestContainer,
  type TestContainerOptions,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { dockerActions, type HealWatch, watchHeal } from "./support/heal-watch.js";
import { pushImage, startRegistry } from "./support/registry.js";
import { waitFor } from "./support/wait.js";

const RESYNC_MS = 1_500;

let fleet: Fleet;
let host: FleetHost;
let watch: HealWatch;

type Container = { id: string; name: string };

beforeAll(async () => {
  fleet = await startFleet({
    nats: "plain",
    hosts: ["actions"],
    env: {
      agent: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
      handler: { FLEETHEAL_MAX_EVENT_AGE_MS: "2000" },
    },
  });
  host = fleet.host("actions");
  watch = await watchHeal(fleet);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

/** An opted-in container with the action `action`, healthy. */
async function healthy(
  name: string,
  action: string,
  more: Partial<TestContainerOptions> = {},
): Promise<Container> {
  const c = await runTestContainer(host.engine, {
    healthIntervalMs: 1_000,
    healthTimeoutMs: 30_000,
    ...more,
    name,
    labels: { autoheal: "true", "autoheal.action": action, ...more.labels },
  });
  await waitForHealth(host.engine, c.id, "healthy", 30_000);
  return c;
}

/** The id of the container now named `name`, if there is one. */
async function idOf(name: string): Promise<string | undefined> {
  const list = await host.engine.docker.listContainers({ all: true });
  return list.find((c) => c.Names.includes(`/${name}`))?.Id;
}

/** The id of the container that replaced `c` under its name, once the old one is gone. */
function newContainerNamed(c: Container): Promise<string> {
  return waitFor(
    async () => {
      const id = await idOf(c.name);
      return id && id !== c.id && (await gone(c.id)) ? id : undefined;
    },
    {
      timeoutMs: 20_000,
      message: `${c.name}: no new container under its name, or the old one stays`,
    },
  );
}

async function gone(id: string): Promise<boolean> {
  try {
    await host.engine.docker.getContainer(id).inspect();
    return false;
  } catch (error) {
    return (error as { statusCode?: number }).statusCode === 404;
  }
}

/** Tags image `id` as `<repo>:v1` in the engine. */
async function tagAs(id: string, repo: string): Promise<void> {
  await host.engine.docker.getImage(id).tag({ repo, tag: "v1" });
}

/** Waits for the record that says what the action did, and returns it. */
function actionRecord(c: Container, phase: string, action: string) {
  return watch.waitForRecord(
    c.id,
    (r) => r.phase === phase,
    30_000,
    `${c.name}: no ${phase} record for the ${action} action`,
  );
}

describe("heal actions", () => {
  it("stops a container labelled autoheal.action=stop", async () => {
    const c = await healthy("act-stop", "stop");
    await makeUnhealthy(host.engine, c.id);
    const record = await actionRecord(c, "stopped", "stop");
    expect(record.action).toBe("stop");
    const state = (await host.engine.docker.getContainer(c.id).inspect()).State;
    expect(state.Status).toBe("exited");
    expect(dockerActions(host.docker, c.id, "stop")).toHaveLength(1);
    expect(dockerActions(host.docker, c.id, "restart")).toHaveLength(0);
    expect(dockerActions(host.docker, c.id, "start")).toHaveLength(1);
  });

  it("only alerts about a container labelled autoheal.action=notify, once per incident", async () => {
    const c = await healthy("act-notify", "notify");
    const before = host.docker.events.filter((e) => e.id === c.id).length;
    await makeUnhealthy(host.engine, c.id);
    const record = await actionRecord(c, "alerted", "notify");
    expect(record.action).toBe("notify");
    // Re-asserted by the resyncs, and still alerted once and left alone.
    await watch.waitForResyncs(c.id, 2, RESYNC_MS * 2 + 15_000);
    expect(watch.records(c.id).filter((r) => r.phase === "alerted")).toHaveLength(1);
    const touched = host.docker.events
      .filter((e) => e.id === c.id)
      .slice(before)
      .filter((e) => !e.action.startsWith("exec_") && !e.action.startsWith("health_status"));
    expect(touched.map((e) => e.action)).toEqual([]);
    const state = (await host.engine.docker.getContainer(c.id).inspect()).State;
    expect(state.Running).toBe(true);
    expect(state.Health?.Status).toBe("unhealthy");
  });

  it("recreates a container labelled autoheal.action=recreate under its name", async () => {
    const c = await healthy("act-recreate", "recreate");
    const config = (await host.engine.docker.getContainer(c.id).inspect()).Config;
    await makeUnhealthy(host.engine, c.id);
    const record = await actionRecord(c, "recreated", "recreate");
    expect(record.action).toBe("recreate");
    const next = await newContainerNamed(c);
    await waitForHealth(host.engine, next, "healthy", 30_000);
    const recreated = (await host.engine.docker.getContainer(next).inspect()).Config;
    expect(recreated.Labels).toEqual(config.Labels);
    expect(recreated.Image).toBe(config.Image);
    expect(recreated.Cmd).toEqual(config.Cmd);
    expect(dockerActions(host.docker, c.id, "destroy")).toHaveLength(1);
  });
  it("pulls the tag again before recreating with autoheal.recreate.pull=true", async () => {
    const registry = await startRegistry();
    fleet.defer(() => registry[Symbol.asyncDispose]());
    const repo = `${registry.host}/app`;
    const ref = `${repo}:v1`;
    const [imageA, imageB] = [
      await importTestImage(host.engine, "fleetheal-test/app-a:v1"),
      await importTestImage(host.engine, "fleetheal-test/app-b:v1"),
    ];
    expect(imageB).not.toBe(imageA);
    await tagAs(imageA, repo);
    await pushImage(host.engine, repo, "v1");
    const c = await healthy("act-pull", "recreate", {
      image: ref,
      labels: { "autoheal.recreate.pull": "true" },
    });
    // The registry gets B under the tag, and this engine keeps A under it: only a pull brings B.
    await tagAs(imageB, repo);
    await pushImage(host.engine, repo, "v1");
    await tagAs(imageA, repo);
    expect((await host.engine.docker.getImage(ref).inspect()).Id).toBe(imageA);
    expect((await host.engine.docker.getContainer(c.id).inspect()).Image).toBe(imageA);

    await makeUnhealthy(host.engine, c.id);
    const record = await actionRecord(c, "recreated", "recreate");
    expect(record.action).toBe("recreate");
    const next = await newContainerNamed(c);
    const recreated = await host.engine.docker.getContainer(next).inspect();
    expect(recreated.Image).toBe(imageB);
    expect(recreated.Config.Image).toBe(ref);
    await waitForHealth(host.engine, next, "healthy", 30_000);
  });
});
