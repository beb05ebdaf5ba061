import { NoRespondersError, PermissionViolationError, TimeoutError } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { isTransientJetStreamFailure, retryTransient } from "./jetstream-resources.js";

describe("isTransientJetStreamFailure", () => {
  it("retries what a cluster that is still starting answers", () => {
    expect(isTransientJetStreamFailure(new TimeoutError())).toBe(true);
    expect(isTransientJetStreamFailure(new NoRespondersError("$JS.API.INFO"))).toBe(true);
    expect(isTransientJetStreamFailure(new Error("JetStream system temporarily unavailable"))).toBe(
      true,
    );
    // What nats.js raises (JetStreamNotEnabled, not exported) when nobody answers the JetStream
    // API: a server without JetStream, or a clustered one electing its leaders.
    const noJetStream = new Error("jetstream is not enabled", {
      cause: new NoRespondersError("$JS.API.INFO"),
    });
    expect(isTransientJetStreamFailure(noJetStream)).toBe(true);
  });

  it("does not retry what an operator has to fix", () => {
    expect(
      isTransientJetStreamFailure(
        new PermissionViolationError("Permissions Violation", "publish", "$JS.API.STREAM.CREATE.X"),
      ),
    ).toBe(false);
    expect(isTransientJetStreamFailure(new Error("insufficient resources"))).toBe(false);
    expect(
      isTransientJetStreamFailure(new Error("replicas > 1 not supported in non-clustered mode")),
    ).toBe(false);
  });
});

describe("retryTransient", () => {
  it("tries again after a transient failure and returns the first success", async () => {
    let calls = 0;
    const result = await retryTransient(
      async () => {
        calls++;
        if (calls < 3) throw new TimeoutError();
        return "open";
      },
      10_000,
      undefined,
    );
    expect(result).toBe("open");
    expect(calls).toBe(3);
  });

  it("gives up on a transient failure once its time is spent", async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw new TimeoutError();
        },
        300,
        undefined,
      ),
    ).rejects.toBeInstanceOf(TimeoutError);
    // 250 ms, then the next wait (500 ms) would pass the deadline.
    expect(calls).toBe(2);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("fails at once on anything else", async () => {
    let calls = 0;
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw new Error("insufficient resources");
        },
        10_000,
        undefined,
      ),
    ).rejects.toThrow("insufficient resources");
    expect(calls).toBe(1);
  });
});
