import { describe, expect, it } from "vitest";
import { FleetHosts } from "./fleet-hosts.js";

/** A hosts bucket whose keys the test sets, counting listings and how far each one read. */
class FakeKeys {
  keys: string[] = [];
  listings = 0;
  read = 0;
  stopped = 0;
  failing = false;
  /** Resolves the listing in progress, when the test holds it back. */
  private release: (() => void) | undefined;
  held = false;

  readonly list = async () => {
    this.listings++;
    if (this.held) {
      await new Promise<void>((resolve) => {
        this.release = resolve;
      });
    }
    if (this.failing) throw new Error("no responders");
    const keys = [...this.keys];
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (const key of keys) {
          self.read++;
          yield key;
        }
      },
      stop: () => {
        this.stopped++;
      },
    };
  };

  finish(): void {
    this.held = false;
    this.release?.();
  }
}

function setup(keys: string[]) {
  const bucket = new FakeKeys();
  bucket.keys = keys;
  let now = 0;
  const errors: unknown[] = [];
  const fleet = new FleetHosts(bucket.list, {
    oneHostMaxAgeMs: 30_000,
    severalHostsMaxAgeMs: 600_000,
    retryMs: 5_000,
    now: () => now,
    onError: (error) => errors.push(error),
  });
  return {
    bucket,
    fleet,
    errors,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("FleetHosts", () => {
  it("one key is a one-host fleet; an empty bucket too", async () => {
    expect(await setup(["host-a"]).fleet.severalHosts()).toBe(false);
    expect(await setup([]).fleet.severalHosts()).toBe(false);
  });

  it("two keys or more are several hosts; the listing stops at the second", async () => {
    const { fleet, bucket } = setup(Array.from({ length: 1_000 }, (_, i) => `host-${i}`));
    expect(await fleet.severalHosts()).toBe(true);
    expect(bucket.read).toBe(2);
    expect(bucket.stopped).toBe(1);
  });

  it("lists once for callers at the same time, and answers from it until it is old", async () => {
    const { fleet, bucket, advance } = setup(["host-a"]);
    expect(await Promise.all([fleet.severalHosts(), fleet.severalHosts()])).toEqual([false, false]);
    advance(29_999);
    expect(await fleet.severalHosts()).toBe(false);
    expect(bucket.listings).toBe(1);
    // A second host joins; the next look after 30 s sees it.
    bucket.keys.push("host-b");
    advance(1);
    bucket.held = true;
    // The old answer meanwhile: the heal path does not wait for a listing.
    expect(await fleet.severalHosts()).toBe(false);
    bucket.finish();
    await waitFor(async () => (await fleet.severalHosts()) === true);
    expect(bucket.listings).toBe(2);
    // "Several hosts" stands longer.
    bucket.keys = ["host-a"];
    advance(599_999);
    expect(await fleet.severalHosts()).toBe(true);
    expect(bucket.listings).toBe(2);
    advance(1);
    await fleet.severalHosts();
    await waitFor(async () => (await fleet.severalHosts()) === false);
    expect(bucket.listings).toBe(3);
  });

  it("without any answer yet, a failed listing means several hosts, and is retried later", async () => {
    const { fleet, bucket, errors, advance } = setup(["host-a"]);
    bucket.failing = true;
    expect(await fleet.severalHosts()).toBe(true);
    expect(await fleet.severalHosts()).toBe(true);
    expect(bucket.listings).toBe(1);
    expect(errors).toHaveLength(1);
    bucket.failing = false;
    advance(5_000);
    expect(await fleet.severalHosts()).toBe(false);
    expect(bucket.listings).toBe(2);
  });

  it("a failed listing keeps the last answer", async () => {
    const { fleet, bucket, advance } = setup(["host-a"]);
    expect(await fleet.severalHosts()).toBe(false);
    bucket.failing = true;
    advance(30_000);
    expect(await fleet.severalHosts()).toBe(false);
    await waitFor(async () => bucket.listings === 2 && (await fleet.severalHosts()) === false);
  });
});

/** Waits, turn by turn of the event loop (no sleeping), until `condition` holds. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error("gave up waiting");
}
