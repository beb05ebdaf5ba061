import { pino } from "pino";
import { DEFAULT_HEAL_POLICY } from "../../contracts/index.js";
import type { HandlerContext } from "../../handlers/handler.js";

/**
 * A {@link HandlerContext} for unit tests that call a handler's `handle` directly: the first
 * delivery, now, the default policy, a silent log, empty stores, no host snapshots and one host.
 * `overrides` replaces any of it. Tests that apply the decisions too take the context of the
 * real DecisionRunner instead (`runnerOn(io).context(…)`, test/support/in-memory-handler-io.ts).
 */
export function fakeHandlerContext(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return {
    now: new Date(),
    log: pino({ level: "silent" }),
    deliveryCount: 1,
    lastDelivery: false,
    policy: DEFAULT_HEAL_POLICY,
    read: async () => undefined,
    hostSnapshot: async () => undefined,
    hostSnapshotEntry: async () => undefined,
    severalHosts: async () => false,
    ...overrides,
  };
}
