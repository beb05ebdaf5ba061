import { describe, expect, it } from "vitest";
import { hostSnapshot } from "../../test/support/gateway-fakes.js";
import { FleetView } from "./fleet-view.js";
import { ContainerPageCache } from "./page-cache.js";

const POLICY = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const parse = (body: Buffer) => JSON.parse(body.toString("utf8"));

describe("ContainerPageCache", () => {
  it("answers a repeated query from cache until the view changes or a status comes due", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h1", ["healthy", "unhealthy"]), T0);
    const cache = new ContainerPageCache(view, POLICY);
    const q = { health: "unhealthy" as const, limit: 100 };
    const first = cache.get(q, T0);
    expect(cache.get({ ...q }, T0 + 3_000)).toBe(first);
    expect(parse(first).containers[0].hostStatus).toBe("up");

    const stale = cache.get(q, T0 + 3_001);
    expect(stale).not.toBe(first);
    expect(parse(stale).containers[0].hostStatus).toBe("stale");

    view.apply(hostSnapshot("h1", ["unhealthy", "unhealthy"]), T0 + 3_001);
    const changed = cache.get(q, T0 + 3_001);
    expect(parse(changed).total).toBe(2);
    expect(parse(changed).containers[0].hostStatus).toBe("up");
  });

  it("keeps only the most recently used queries", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h1", ["healthy"]), T0);
    const cache = new ContainerPageCache(view, POLICY, 2);
    const a = cache.get({ limit: 1 }, T0);
    cache.get({ limit: 2 }, T0);
    expect(cache.get({ limit: 1 }, T0)).toBe(a);
    cache.get({ limit: 3 }, T0);
    // limit=2 was the least recently used and made room; limit=1 is still there.
    expect(cache.get({ limit: 1 }, T0)).toBe(a);
    const b = cache.get({ limit: 2 }, T0);
    expect(cache.get({ limit: 2 }, T0)).toBe(b);
  });
});
