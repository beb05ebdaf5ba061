import { describe, expect, it } from "vitest";
import { ledgerEntry } from "../../test/support/fixtures.js";
import { hostSnapshot } from "../../test/support/gateway-fakes.js";
import { ContainerPage } from "../http/api-schemas.js";
import { findContainers } from "./container-query.js";
import { FleetView } from "./fleet-view.js";
import { ContainerPageRenderer, summarizeContainer } from "./summaries.js";

const POLICY = { staleAfterHeartbeats: 3, downAfterHeartbeats: 12 };
const T0 = Date.parse("2026-11-27T20:00:00.000Z");

describe("ContainerPageRenderer", () => {
  it("renders what summarising each row gives, and follows ledger and status changes", () => {
    const view = new FleetView();
    view.apply(hostSnapshot("h1", ["healthy", "unhealthy", "none"]), T0);
    view.apply(hostSnapshot("h2", ["unhealthy"]), T0);
    const renderer = new ContainerPageRenderer(view, POLICY);
    const expected = (now: number, limit: number) => {
      const page = findContainers(view, { limit });
      return {
        containers: page.rows.map((row) => summarizeContainer(view, row, now, POLICY)),
        total: page.total,
        ...(page.next ? { next: page.next } : {}),
      };
    };
    const render = (now: number, limit = 100) =>
      ContainerPage.parse(
        JSON.parse(renderer.render(findContainers(view, { limit }), now).toString("utf8")),
      );

    expect(render(T0)).toEqual(expected(T0, 100));
    expect(render(T0, 2)).toEqual(expected(T0, 2));

    const id = view.get("h1")?.snapshot.containers[1]?.id ?? "";
    view.applyLedger(
      "h1",
      id,
      ledgerEntry({
        host: "h1",
        containerId: id,
        restarts: [
          {
            at: "2026-11-27T19:59:00.000Z",
            incident: "x",
            commandId: "cmd-00000001",
            outcome: "restarted",
          },
        ],
        consecutiveRestarts: 1,
        lastRestartAt: "2026-11-27T19:59:00.000Z",
        quarantine: { since: "2026-11-27T19:59:30.000Z", reason: "budget" },
      }),
    );
    const afterLedger = render(T0);
    expect(afterLedger).toEqual(expected(T0, 100));
    expect(afterLedger.containers.find((c) => c.id === id)).toMatchObject({
      quarantined: true,
      restarts: 1,
    });

    const later = T0 + 3_001;
    const stale = render(later);
    expect(stale).toEqual(expected(later, 100));
    expect(new Set(stale.containers.map((c) => c.hostStatus))).toEqual(new Set(["stale"]));
  });
});
