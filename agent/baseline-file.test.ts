import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST_SNAPSHOT_TYPE, type HostSnapshot } from "../contracts/index.js";
import { baselineFile, fileBaseline } from "./baseline-file.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleetheal-baseline-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function snapshot(host: string, seq: number): HostSnapshot {
  return {
    type: HOST_SNAPSHOT_TYPE,
    v: 1,
    host,
    seq,
    at: "2026-12-07T01:00:00.000Z",
    heartbeatMs: 5000,
    agent: {
      version: "0.1.0",
      startedAt: "2026-12-07T00:59:00.000Z",
      label: "autoheal",
      watchAll: false,
      uptimeSeconds: 60,
    },
    outbox: { depth: 0, capacity: 100, published: 3, dropped: 0 },
    lastEventTimeNano: "1796000000000000000",
    docker: { status: "up", version: "24.0.7" },
    containers: [],
  };
}

describe("fileBaseline", () => {
  it("loads nothing before the first save, then the last snapshot saved", async () => {
    const file = baselineFile(join(dir, "new", "data"), "web-1");
    const baseline = fileBaseline(file, "web-1");
    expect(await baseline.load()).toBeUndefined();
    await baseline.save(snapshot("web-1", 1));
    await baseline.save(snapshot("web-1", 2));
    expect((await baseline.load())?.seq).toBe(2);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "new", "data"))).mode & 0o777).toBe(0o700);
    // The next run of the agent reads it through a new store, as after a restart.
    expect((await fileBaseline(file, "web-1").load())?.lastEventTimeNano).toBe(
      "1796000000000000000",
    );
  });

  it("refuses a file that is not a snapshot, or another host's", async () => {
    const file = join(dir, "bad.json");
    await writeFile(file, "{not json");
    await expect(fileBaseline(file, "web-1").load()).rejects.toThrow(/bad\.json/);
    await fileBaseline(file, "web-2").save(snapshot("web-2", 1));
    await expect(fileBaseline(file, "web-1").load()).rejects.toThrow(/holds host web-2/);
    expect(JSON.parse(await readFile(file, "utf8")).host).toBe("web-2");
  });
});
