import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ContainerSnapshot } from "../../contracts/index.js";
import { ledgerEntry } from "../../test/support/fixtures.js";
import { hostSnapshot } from "../../test/support/gateway-fakes.js";
import type { ContainersQuery } from "../http/api-schemas.js";
import { findContainers } from "./container-query.js";
import { compareContainers, FleetView } from "./fleet-view.js";

const T0 = Date.parse("2026-11-27T20:00:00.000Z");
const HEALTH = ["healthy", "unhealthy", "starting", "none"] as const;
const STATES = ["running", "exited", "paused"] as const;

const container = fc.record({
  health: fc.constantFrom(...HEALTH),
  state: fc.constantFrom(...STATES),
  name: fc.constantFrom("api", "web", "db", "cache", "api-2", "Web"),
  optedIn: fc.boolean(),
  team: fc.option(fc.constantFrom("red", "blue"), { nil: undefined }),
  quarantined: fc.boolean(),
});

const fleet = fc.dictionary(
  fc.constantFrom("h1", "h2", "h3", "h10", "a-host"),
  fc.array(container, { maxLength: 8 }),
);

const query = fc.record(
  {
    host: fc.constantFrom("h1", "h2", "h10", "nope"),
    health: fc.constantFrom(...HEALTH),
    state: fc.constantFrom(...STATES),
    label: fc.constantFrom("fleetheal.team", "fleetheal.team=red", "autoheal"),
    name: fc.constantFrom("api", "WEB", "e"),
    quarantined: fc.boolean(),
    optedIn: fc.boolean(),
  },
  { requiredKeys: [] },
);

describe("queryContainers", () => {
  it("pages through exactly what a plain filter and sort of the whole fleet gives", () => {
    fc.assert(
      fc.property(fleet, query, fc.integer({ min: 1, max: 7 }), (hosts, filters, limit) => {
        const view = new FleetView();
        const quarantined = new Set<string>();
        for (const [host, specs] of Object.entries(hosts)) {
          const snapshot = hostSnapshot(
            host,
            specs.map((s) => s.health),
          );
          snapshot.containers.forEach((c, i) => {
            const spec = specs[i];
            if (!spec) return;
            Object.assign(c, { state: spec.state, name: spec.name, optedIn: spec.optedIn });
            c.labels = spec.team ? { "fleetheal.team": spec.team } : {};
            if (spec.quarantined) quarantined.add(`${host}.${c.id}`);
          });
          view.apply(snapshot, T0);
          for (const c of snapshot.containers) {
            if (!quarantined.has(`${host}.${c.id}`)) continue;
            view.applyLedger(
              host,
              c.id,
              ledgerEntry({
                host,
                containerId: c.id,
                quarantine: { since: new Date(T0).toISOString(), reason: "budget" },
              }),
            );
          }
        }

        // The reference: every container, filtered one by one, sorted by host, name and id.
        const expected = Object.keys(hosts)
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
          .flatMap((host) =>
            [...(view.get(host)?.snapshot.containers ?? [])]
              .sort(compareContainers)
              .filter((c) => keep(host, c, filters, quarantined))
              .map((c) => `${host}/${c.id}`),
          );

        const seen: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 100; pages++) {
          const q: ContainersQuery = { ...filters, limit, ...(cursor ? { cursor } : {}) };
          const page = findContainers(view, q);
          expect(page.total).toBe(expected.length);
          seen.push(...page.rows.map((r) => `${r.host.snapshot.host}/${r.container.id}`));
          if (!page.next) break;
          expect(page.rows).toHaveLength(limit);
          cursor = page.next;
        }
        expect(seen).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});

function keep(
  host: string,
  c: ContainerSnapshot,
  q: Partial<ContainersQuery>,
  quarantined: Set<string>,
): boolean {
  if (q.host !== undefined && q.host !== host) return false;
  if (q.health !== undefined && q.health !== c.health) return false;
  if (q.state !== undefined && q.state !== c.state) return false;
  if (q.optedIn !== undefined && q.optedIn !== c.optedIn) return false;
  if (q.name !== undefined && !c.name.toLowerCase().includes(q.name.toLowerCase())) return false;
  if (q.quarantined !== undefined && quarantined.has(`${host}.${c.id}`) !== q.quarantined)
    return false;
  if (q.label !== undefined) {
    const [key, value] = q.label.split("=");
    const actual = c.labels[key as string];
    if (actual === undefined || (value !== undefined && actual !== value)) return false;
  }
  return true;
}
