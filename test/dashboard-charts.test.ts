// The dashboard's charts in a real headless Chromium, against real parts: one nats-server, one
// dockerd, an agent, a handler and the gateway. Real heals put restarts and unhealthy
// transitions in the history; the counts the page plots must equal `GET /history/counts` for the
// same window, fleet-wide and for the host, at a laptop's width and a phone's, and a container's
// timeline must show its own restarts. Screenshots go to test-results/.

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventsPage, HistoryCounts } from "../gateway/http/api-schemas.js";
import { launchChromium, watchProblems } from "./support/chromium.js";
import {
  makeUnhealthyUntilRestarted,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { REPO } from "./support/fleetheal.js";
import { waitFor } from "./support/wait.js";

const HOST = "chart-host";
const HEALS = 2;
const RESULTS = join(REPO, "test-results");

let fleet: Fleet;
let host: FleetHost;
let browser: Browser;
let url: string;
let flappy: { id: string; name: string };
/** What the pages reported that they should not: script errors and CSP violations. */
const pageProblems: string[] = [];

/** What the page plots: the chart's totals and every bucket's counts, from its DOM. */
interface Plotted {
  window: string;
  host: string;
  totals: { restarts: number; failed: number; unhealthy: number };
  buckets: Record<string, { restarts: number; failed: number; unhealthy: number }>;
  summary: string;
  /** The drawn bars: how many, all inside the plot, the tallest's share of its height. */
  bars: { count: number; inside: boolean; tallest: number };
}

/** Reads {@link Plotted} in the page (a string: the tests' types have no DOM). */
const READ_PLOTTED = `(() => {
  const figure = document.querySelector("[data-testid=counts-chart]");
  const counts = (el) => ({
    restarts: Number(el.getAttribute("data-restarts")),
    failed: Number(el.getAttribute("data-failed")),
    unhealthy: Number(el.getAttribute("data-unhealthy")),
  });
  const buckets = {};
  for (const g of figure.querySelectorAll("[data-testid=chart-bucket]")) {
    buckets[g.getAttribute("data-start")] = counts(g);
  }
  // The bars as drawn: inside the plot, and the tallest as high as the y axis' top allows.
  const plot = figure.querySelector("svg").getBoundingClientRect();
  const bars = [...figure.querySelectorAll("rect.chart-bar")].map((r) => r.getBoundingClientRect());
  const inside = bars.every((b) => b.left >= plot.left - 1 && b.right <= plot.right + 1
    && b.top >= plot.top - 1 && b.bottom <= plot.bottom + 1);
  const tallest = Math.max(0, ...bars.map((b) => b.height)) / plot.height;
  return {
    window: figure.getAttribute("data-window"),
    host: figure.getAttribute("data-host"),
    totals: counts(figure),
    buckets,
    summary: figure.querySelector("[data-testid=chart-summary]").textContent,
    bars: { count: bars.length, inside, tallest },
  };
})()`;

async function plotted(page: Page): Promise<Plotted> {
  return (await page.evaluate(READ_PLOTTED)) as Plotted;
}

async function apiCounts(query: string): Promise<HistoryCounts> {
  const res = await fetch(`${url}/history/counts?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as HistoryCounts;
}

/**
 * Waits for the page's chart of this window and host, then checks it plots what the API
 * answers: the same totals, and the same counts in every bucket both have (a minute may turn
 * between the two reads, shifting the window by one bucket).
 */
async function expectPlotsApi(page: Page, window: "1h" | "24h", hostId: string): Promise<Plotted> {
  const chart = page.locator(
    `[data-testid=counts-chart][data-window="${window}"][data-host="${hostId}"]`,
  );
  await chart.waitFor({ timeout: 20_000 });
  let last = "";
  return waitFor(
    async () => {
      const shown = await plotted(page);
      const api = await apiCounts(`window=${window}${hostId ? `&host=${hostId}` : ""}`);
      const shared = api.buckets.filter((b) => shown.buckets[b.start] !== undefined);
      last = `page ${JSON.stringify(shown.totals)}, API ${JSON.stringify(api.totals)}, ${shared.length} shared buckets`;
      if (JSON.stringify(shown.totals) !== JSON.stringify(api.totals)) return undefined;
      if (shared.length < api.buckets.length - 1) return undefined;
      for (const b of shared) {
        const { start, ...counts } = b;
        if (JSON.stringify(shown.buckets[start]) !== JSON.stringify(counts)) return undefined;
      }
      return shown;
    },
    {
      timeoutMs: 30_000,
      intervalMs: 1_000,
      message: () => `the ${window} chart of "${hostId}" never plotted the API's counts (${last})`,
    },
  );
}

beforeAll(async () => {
  await mkdir(RESULTS, { recursive: true });
  fleet = await startFleet({ nats: "plain", hosts: [HOST], gateway: true });
  host = fleet.host(HOST);
  url = fleet.gateway.url;
  flappy = await runTestContainer(host.engine, {
    name: "flappy",
    labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
    healthTimeoutMs: 60_000,
  });
  await waitForHealth(host.engine, flappy.id, "healthy", 20_000);
  // Real heals, as Docker sees them: unhealthy, then restarted by the handler.
  for (let i = 0; i < HEALS; i++) {
    await makeUnhealthyUntilRestarted(host.engine, host.docker, flappy.id, {
      timeoutMs: 30_000,
      message: `heal ${i + 1} of flappy never happened`,
    });
    await waitForHealth(host.engine, flappy.id, "healthy", 20_000);
  }
  // Every restart is recorded before the pages look.
  let totals = "";
  await waitFor(
    async () => {
      const counts = await apiCounts("window=1h");
      totals = JSON.stringify(counts.totals);
      return counts.totals.restarts === HEALS && counts.totals.unhealthy >= HEALS;
    },
    { timeoutMs: 30_000, intervalMs: 1_000, message: () => `the API counts ${totals}` },
  );
  browser = await launchChromium();
  fleet.defer(() => browser.close());
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

const VIEWPORTS: [string, BrowserContextOptions][] = [
  ["laptop", { viewport: { width: 1280, height: 800 } }],
  [
    "phone",
    {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: "dark",
    },
  ],
];

describe("dashboard charts", () => {
  it("counts the real heals in the history, by host and in both windows", async () => {
    const hour = await apiCounts("window=1h");
    expect(hour.totals).toMatchObject({ restarts: HEALS, failed: 0 });
    expect(hour.buckets).toHaveLength(60);
    expect(hour.truncated).toBeUndefined();
    expect(hour.hosts).toEqual([{ host: HOST, ...hour.totals }]);
    const day = await apiCounts(`window=24h&host=${HOST}`);
    expect(day.buckets).toHaveLength(96);
    expect(day.totals).toEqual(hour.totals);
    expect((await apiCounts("window=1h&host=no-such-host")).totals).toEqual({
      restarts: 0,
      failed: 0,
      unhealthy: 0,
    });
  });

  for (const [label, options] of VIEWPORTS) {
    it(`plots the API's counts at ${label} width, and a container's own timeline`, async () => {
      const context = await browser.newContext(options);
      try {
        const page = await context.newPage();
        watchProblems(page, label, pageProblems);
        await page.goto(url);

        const fleetHour = await expectPlotsApi(page, "1h", "");
        expect(fleetHour.totals.restarts).toBe(HEALS);
        expect(fleetHour.summary).toContain(`${HEALS} restarts`);
        expect(fleetHour.bars.count).toBeGreaterThan(0);
        expect(fleetHour.bars.inside).toBe(true);
        expect(fleetHour.bars.tallest).toBeGreaterThanOrEqual(0.5);
        await page.getByTestId("activity").screenshot({
          path: join(RESULTS, `dashboard-charts-${label}.png`),
        });

        await page.getByTestId("activity-24h").click();
        await expectPlotsApi(page, "24h", "");

        // The chart follows the host filter: a host's card, or the host under the chart.
        await page.getByTestId("activity-host").filter({ hasText: HOST }).click();
        const hostDay = await expectPlotsApi(page, "24h", HOST);
        expect(hostDay.totals.restarts).toBe(HEALS);
        await page.getByTestId("activity-1h").click();
        await expectPlotsApi(page, "1h", HOST);
        await page.getByTestId("activity-all-hosts").click();
        await expectPlotsApi(page, "1h", "");

        // Nothing wider than the screen.
        const widths = (await page.evaluate(
          `({ doc: document.documentElement.scrollWidth, view: window.innerWidth,
              chart: document.querySelector("[data-testid=activity]").getBoundingClientRect().right })`,
        )) as { doc: number; view: number; chart: number };
        expect(widths.doc).toBeLessThanOrEqual(widths.view);
        expect(widths.chart).toBeLessThanOrEqual(widths.view);
        await page.screenshot({
          path: join(RESULTS, `dashboard-overview-${label}.png`),
          fullPage: label === "phone",
        });

        // The container's timeline shows its restarts, as its records in the API say.
        const records = (await (
          await fetch(
            `${url}/events?host=${HOST}&container=${flappy.id}&kind=remediation&since=24h&limit=1000`,
          )
        ).json()) as EventsPage;
        const restarted = records.records.filter(
          (r) => r.kind === "remediation" && r.remediation.phase === "restarted",
        ).length;
        expect(restarted).toBe(HEALS);
        await page.goto(`${url}/#/containers/${HOST}/${flappy.id}`);
        const timeline = page.locator(
          `[data-testid=container-timeline][data-restarts="${restarted}"]`,
        );
        await timeline.waitFor({ timeout: 20_000 });
        expect(await timeline.getAttribute("data-failed")).toBe("0");
        expect(Number(await timeline.getAttribute("data-unhealthy"))).toBeGreaterThanOrEqual(HEALS);
        expect(
          await timeline.locator('[data-testid=timeline-mark][data-phase="restarted"]').count(),
        ).toBe(restarted);
        expect(await timeline.getByTestId("timeline-summary").textContent()).toContain(
          `${restarted} restarts`,
        );
        await page.getByTestId("timeline-1h").click();
        await page
          .locator(
            `[data-testid=container-timeline][data-window="1h"][data-restarts="${restarted}"]`,
          )
          .waitFor({ timeout: 5_000 });
        const detailWidth = (await page.evaluate(
          "document.documentElement.scrollWidth <= window.innerWidth",
        )) as boolean;
        expect(detailWidth).toBe(true);
        // The detail page is drawn again as the fleet's health changes: a screenshot may lose
        // its element, and is taken again.
        await waitFor(
          async () => {
            await page.getByTestId("container-timeline").screenshot({
              path: join(RESULTS, `dashboard-timeline-${label}.png`),
              timeout: 2_000,
            });
            return true;
          },
          { timeoutMs: 20_000, message: "no screenshot of the timeline" },
        );
      } finally {
        await context.close();
      }
      expect(pageProblems).toEqual([]);
    });
  }
});
