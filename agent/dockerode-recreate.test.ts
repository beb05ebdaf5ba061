import { PassThrough, Readable } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { RecreateError } from "./docker-engine.js";
import { pullImage, recreateContainer } from "./dockerode-recreate.js";

/** Just enough of dockerode for a pull: `pull` answers with `stream`, and records its options. */
function pulling(stream: NodeJS.ReadableStream) {
  const asked: { reference: string; signal: AbortSignal | undefined }[] = [];
  const docker = {
    pull: async (reference: string, options: { abortSignal?: AbortSignal }) => {
      asked.push({ reference, signal: options.abortSignal });
      return stream;
    },
  } as unknown as Docker;
  return { docker, asked };
}

const line = (o: object) => `${JSON.stringify(o)}\n`;

describe("pullImage", () => {
  it("reads Docker's progress to its end, split anywhere, and succeeds without an error line", async () => {
    const progress = [
      line({ status: "Pulling from app", id: "1" }),
      line({ status: "Downloading", progressDetail: { current: 1, total: 2 } }),
      line({ status: "Status: Downloaded newer image for 127.0.0.1:5000/app:1" }),
    ].join("");
    const chunks = [progress.slice(0, 7), progress.slice(7, 50), progress.slice(50)];
    const { docker, asked } = pulling(Readable.from(chunks.map((c) => Buffer.from(c))));
    await pullImage(docker, "127.0.0.1:5000/app:1", 5_000);
    expect(asked.map((a) => a.reference)).toEqual(["127.0.0.1:5000/app:1"]);
  });

  it("fails with the error Docker reports inside its 200 answer, cut to a bounded size", async () => {
    const { docker } = pulling(
      Readable.from([
        Buffer.from(line({ status: "Pulling from app" })),
        Buffer.from(line({ error: `manifest unknown ${"x".repeat(2_000)}`, errorDetail: {} })),
      ]),
    );
    const failure = await pullImage(docker, "app:1", 5_000).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^manifest unknown x+$/);
    expect((failure as Error).message).toHaveLength(512);
  });

  it("gives up after its time, and aborts the request", async () => {
    const stream = new PassThrough();
    stream.write(line({ status: "Downloading" }));
    const { docker, asked } = pulling(stream);
    const failure = await pullImage(docker, "slow/app:1", 50).catch((e: Error) => e);
    expect((failure as Error).message).toBe("pull of slow/app:1 did not finish within 50 ms");
    expect(asked[0]?.signal?.aborted).toBe(true);
    expect(stream.destroyed).toBe(true);
  });
});

const OLD = "0123456789ab".padEnd(64, "0");
const NEW = "fedcba987654".padEnd(64, "f");

/** A dockerode that records the recreate's calls in order; calls starting with a `fail` throw. */
function engine(fail: string[] = [], hostConfig: Record<string, unknown> = {}) {
  const calls: string[] = [];
  const call = async (what: string, result?: unknown) => {
    calls.push(what);
    if (fail.some((f) => what.startsWith(f))) {
      throw Object.assign(new Error(`${what} refused`), { statusCode: 500 });
    }
    return result;
  };
  const container = (id: string) => ({
    id,
    inspect: () =>
      call(`inspect ${id.slice(0, 3)}`, {
        Id: OLD,
        Name: "/web",
        Image: "sha256:old",
        State: { Running: true },
        Config: { Image: "web:1", Hostname: OLD.slice(0, 12) },
        HostConfig: { NetworkMode: "front", ...hostConfig },
        NetworkSettings: { Networks: { front: {}, back: { Aliases: ["api"] } } },
        Mounts: [],
      }),
    stop: (o: { t: number }) => call(`stop ${id.slice(0, 3)} t=${o.t}`),
    rename: (o: { name: string }) => call(`rename ${id.slice(0, 3)} ${o.name}`),
    start: () => call(`start ${id.slice(0, 3)}`),
    remove: (o: { v: boolean }) => call(`remove ${id.slice(0, 3)} v=${o.v}`),
  });
  const docker = {
    getContainer: container,
    getImage: () => ({ inspect: () => call("image", { Config: {} }) }),
    createContainer: (body: { name: string }) =>
      call(`create ${body.name}`).then(() => container(NEW)),
    getNetwork: (name: string) => ({ connect: () => call(`connect ${name}`) }),
  } as unknown as Docker;
  return { docker, calls };
}

describe("recreateContainer", () => {
  it("stops, parks, creates, connects, starts, and removes the old one without its volumes", async () => {
    const { docker, calls } = engine();
    const result = await recreateContainer(docker, OLD, { stopTimeoutSeconds: 3 });
    expect(result).toEqual({ newContainerId: NEW });
    expect(calls).toEqual([
      "inspect 012",
      "image",
      "stop 012 t=3",
      "rename 012 web-fleetheal-old-0123456789ab",
      "create web",
      "connect back",
      "start fed",
      "remove 012 v=false",
    ]);
  });

  it.each([
    ["create", []],
    ["connect", ["remove fed v=false"]],
    ["start", ["remove fed v=false"]],
  ])("puts the old container back when %s fails", async (step, removeNew) => {
    const { docker, calls } = engine([step === "start" ? "start fed" : step]);
    const error = await recreateContainer(docker, OLD, { stopTimeoutSeconds: 3 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RecreateError);
    expect(error).toMatchObject({ step, restored: true, code: "FLEETHEAL_ERR_RECREATE" });
    expect((error as Error).message).toContain("the old container is back as web, running");
    const undo = calls.slice(calls.findIndex((c) => c.startsWith(step)) + 1);
    expect(undo).toEqual([...removeNew, "rename 012 web", "start 012"]);
  });

  it("says so when the old container cannot be put back", async () => {
    const { docker } = engine(["create", "start 012"]);
    // The rename back works, its start does not: it is back, but not running.
    const error = (await recreateContainer(docker, OLD, { stopTimeoutSeconds: 3 }).catch(
      (e: unknown) => e,
    )) as RecreateError;
    expect(error.restored).toBe(false);
    expect(error.message).toContain("putting the old container back failed: start it again");
  });

  it("refuses a --rm container before touching it", async () => {
    const { docker, calls } = engine([], { AutoRemove: true });
    const error = await recreateContainer(docker, OLD, { stopTimeoutSeconds: 3 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ refusal: "auto-remove", restored: true });
    expect(calls).toEqual(["inspect 012"]);
  });

  it("keeps the new container when the old one resists removal, and names the leftover", async () => {
    const { docker } = engine(["remove 012"]);
    const result = await recreateContainer(docker, OLD, { stopTimeoutSeconds: 3 });
    expect(result.newContainerId).toBe(NEW);
    expect(result.leftover).toContain("web-fleetheal-old-0123456789ab");
  });
});
