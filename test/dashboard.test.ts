// The dashboard in a real headless Chromium, against real parts: one nats-server, one dockerd, an
// agent, a handler and the gateway that serves the page. It must show the host, follow a heal
// live over its SSE stream without a reload, restart a container through the admin-token dialog
// (Docker is the witness), and fit a phone's screen. Screenshots go to test-results/.

import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_BUCKET, encode, POLICY_KEY } from "../contracts/index.js";
import { launchChromium, watchProblems } from "./support/chromium.js";
import {
  makeHealthy,
  makeUnhealthy,
  runTestContainer,
  waitForHealth,
} from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { REPO } from "./support/fleetheal.js";
import { waitFor } from "./support/wait.js";

const HOST = "dash-host";
const ADMIN_TOKEN = randomBytes(24).toString("base64url").slice(0, 32);
const RESULTS = join(REPO, "test-results");

let fleet: Fleet;
let host: FleetHost;
let browser: Browser;
let page: Page;
let url: string;
/** What the page reported that it should not: script errors and CSP violations. */
const pageProblems: string[] = [];
/** The containers the tests use, created before the page loads so that it lists them. */
let web: { id: string; name: string };
let api: { id: string; name: string };

const row = (p: Page, id: string) => p.locator(`[data-testid="container-row"][data-id="${id}"]`);

async function startedAt(id: string): Promise<string> {
  return (await host.engine.docker.getContainer(id).inspect()).State.StartedAt;
}

beforeAll(async () => {
  await mkdir(RESULTS, { recursive: true });
  fleet = await startFleet({
    nats: "plain",
    hosts: [HOST],
    gateway: { adminToken: ADMIN_TOKEN },
  });
  host = fleet.host(HOST);
  url = fleet.gateway.url;

  // `web` is healed by the handler; `api` is restarted by hand from the page. Their healthchecks
  // never time out, so that every trouble of theirs is the test's own, however loaded the machine.
  web = await runTestContainer(host.engine, {
    name: "web",
    labels: { autoheal: "true", "autoheal.backoff.initial": "0" },
    healthTimeoutMs: 60_000,
  });
  api = await runTestContainer(host.engine, {
    name: "api",
    labels: { autoheal: "true" },
    healthTimeoutMs: 60_000,
  });
  await waitForHealth(host.engine, web.id, "healthy", 20_000);
  await waitForHealth(host.engine, api.id, "healthy", 20_000);

  browser = await launchChromium();
  fleet.defer(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  watchProblems(page, "laptop", pageProblems);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

describe("dashboard", () => {
  it("shows the host, its counts and its containers", async () => {
    await page.goto(url);
    const card = page.locator(`[data-testid="host-card"][data-host="${HOST}"]`);
    await page
      .locator(`[data-testid="host-card"][data-host="${HOST}"][data-status="up"]`)
      .waitFor({ timeout: 20_000 });
    expect(await card.getByTestId("host-docker").textContent()).toContain("up");
    for (const c of [web, api]) {
      await page
        .locator(`[data-testid="container-row"][data-id="${c.id}"][data-health="healthy"]`)
        .waitFor({ timeout: 20_000 });
    }
    await page
      .locator('[data-testid="fleet-banner"][data-status="healthy"]')
      .waitFor({ timeout: 20_000 });
    // The banner can turn healthy on a report that still counts a container as starting.
    await card.getByTestId("host-healthy").filter({ hasText: "2" }).waitFor({ timeout: 20_000 });
    await page
      .locator('[data-testid="live-status"][data-state="live"]')
      .waitFor({ timeout: 10_000 });
    await page.locator('[data-testid="healing-state"][data-state="active"]').waitFor();

    // The name filter narrows the table, and clearing it brings everything back.
    await page.getByTestId("filter-name").fill("we");
    await page
      .locator(`[data-testid="container-row"]:not([data-id="${web.id}"])`)
      .first()
      .waitFor({ state: "detached", timeout: 5_000 });
    expect(await page.getByTestId("container-row").count()).toBe(1);
    await page.getByTestId("filter-reset").click();
    await row(page, api.id).waitFor({ timeout: 5_000 });
  });

  it("follows a heal live: the unhealthy event, the restart and the table, without a reload", async () => {
    // A reload would drop this marker.
    await page.evaluate("window.__sameDocument = true");
    await makeUnhealthy(host.engine, web.id);

    const feed = page.getByTestId("event-feed");
    await feed
      .locator(`[data-kind="event"][data-label="unhealthy"][data-container="${web.id}"]`)
      .first()
      .waitFor({ timeout: 30_000 });
    await feed
      .locator(`[data-kind="remediation"][data-label="restarted"][data-container="${web.id}"]`)
      .first()
      .waitFor({ timeout: 30_000 });
    // Docker saw the restart the page reports.
    await host.docker.waitFor(
      (e) => e.id === web.id && e.action === "restart",
      10_000,
      "the handler did not restart the unhealthy container",
    );
    // The table follows: fleetheal's restart count goes to 1 and the container is healthy again.
    let shown = "";
    await waitFor(
      async () => {
        const r = row(page, web.id);
        shown = `health=${await r.getAttribute("data-health")} restarts=${await r.getByTestId("container-restarts").textContent()}`;
        return shown === "health=healthy restarts=1";
      },
      { timeoutMs: 30_000, message: () => `the row of web never showed the heal (${shown})` },
    );
    expect(await page.evaluate("window.__sameDocument")).toBe(true);

    // The detail page shows the restart history, the quarantine state and the labels.
    await row(page, web.id).getByTestId("container-link").click();
    await page.getByTestId("detail-name").waitFor({ timeout: 10_000 });
    expect(await page.getByTestId("detail-name").textContent()).toBe("web");
    await page.getByTestId("restart-entry").first().waitFor({ timeout: 10_000 });
    expect(await page.getByTestId("quarantine-state").textContent()).toContain("Not quarantined");
    // One restart so far, counted against the default budget of 5 restarts an hour.
    expect(await page.getByTestId("detail-budget").textContent()).toBe("1 of 5 used in 1h");
    const labels = await page.getByTestId("detail-labels").textContent();
    // Agents publish only the labels fleetheal reads.
    expect(labels).toContain("autoheal.backoff.initial");
    await page
      .getByTestId("detail-events")
      .locator('[data-label="restarted"]')
      .first()
      .waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(RESULTS, "dashboard-detail.png") });
    await page.getByTestId("back").click();
    await row(page, web.id).waitFor({ timeout: 10_000 });
    expect(await page.evaluate("window.__sameDocument")).toBe(true);
    await page.screenshot({ path: join(RESULTS, "dashboard-laptop.png") });
  });

  it("restarts a container from the page once the admin token is given", async () => {
    const before = await startedAt(api.id);
    await row(page, api.id).getByTestId("restart-button").click();
    const dialog = page.getByTestId("action-dialog");
    await dialog.waitFor({ state: "visible" });

    // A wrong token is refused and the dialog stays open to try again.
    await page.getByTestId("admin-token-input").fill("not-the-admin-token-at-all");
    await page.getByTestId("action-confirm").click();
    await page.getByTestId("action-error").waitFor({ state: "visible", timeout: 10_000 });
    expect(await page.getByTestId("action-error").textContent()).toMatch(/rejected/i);
    expect(await startedAt(api.id)).toBe(before);

    await page.getByTestId("admin-token-input").fill(ADMIN_TOKEN);
    await page.getByTestId("action-reason").fill("dashboard test");
    await page.getByTestId("action-confirm").click();
    // The toast fades after a while: it is held as it appears, while the dialog closes, so that
    // a slow test process still reads it.
    const [, toast] = await Promise.all([
      dialog.waitFor({ state: "hidden", timeout: 30_000 }),
      page
        .locator('[data-testid="toast"][data-tone="ok"]')
        .first()
        .elementHandle({ timeout: 30_000 }),
    ]);
    expect(await toast.textContent()).toContain("Restarted api");
    await toast.dispose();

    // Docker restarted it: a new StartedAt, and the audit record reaches the live feed.
    await waitFor(async () => (await startedAt(api.id)) !== before, {
      timeoutMs: 10_000,
      message: "Docker's StartedAt of api did not change",
    });
    await page
      .getByTestId("event-feed")
      .locator(`[data-kind="remediation"][data-label="restarted"][data-container="${api.id}"]`)
      .first()
      .waitFor({ timeout: 15_000 });
    expect(await page.evaluate("sessionStorage.getItem('fleetheal.adminToken')")).toBe(ADMIN_TOKEN);
  });

  it("pauses and resumes healing from the header, with the state shown there", async () => {
    const policy = async () => {
      const res = await fetch(`${url}/policy`);
      return ((await res.json()) as { policy: { paused: boolean } }).policy.paused;
    };
    for (const [action, paused] of [
      ["pause", true],
      ["resume", false],
    ] as const) {
      await page.locator(`[data-testid="pause-toggle"][data-action="${action}"]`).click();
      await page.getByTestId("action-dialog").waitFor({ state: "visible" });
      // The admin token given for the restart is still there, in this tab's sessionStorage.
      expect(await page.getByTestId("admin-token-input").inputValue()).toBe(ADMIN_TOKEN);
      await page.getByTestId("action-confirm").click();
      await page
        .locator(`[data-testid="healing-state"][data-state="${paused ? "paused" : "active"}"]`)
        .waitFor({ timeout: 10_000 });
      expect(await policy()).toBe(paused);
    }
  });

  it("shows a stored policy that does not validate in the header, until a valid one is stored", async () => {
    const nc = await fleet.nats.connect({ name: "dashboard-test-policy" });
    try {
      const kv = await new Kvm(nc).open(CONFIG_BUCKET);
      await kv.put(POLICY_KEY, encode({ stream: "FLEETHEAL_EVENTS", seq: 1 }));
      const invalid = page.locator('[data-testid="healing-state"][data-state="policy-invalid"]');
      await invalid.waitFor({ timeout: 15_000 });
      expect(await invalid.getAttribute("title")).toMatch(/Unrecognized keys: "stream", "seq"/);
      const put = await fetch(`${url}/policy`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: "{}",
      });
      expect(put.status).toBe(200);
      await page
        .locator('[data-testid="healing-state"][data-state="active"]')
        .waitFor({ timeout: 15_000 });
    } finally {
      await nc.close();
    }
  });

  it("switches healing off and on from the container page, showing who and since when", async () => {
    const disabled = async () => {
      const res = await fetch(`${url}/policy`);
      return ((await res.json()) as { policy: { disabled: { name: string; by: string }[] } }).policy
        .disabled;
    };
    await row(page, api.id).getByTestId("container-link").click();
    await page.getByTestId("detail-name").filter({ hasText: "api" }).waitFor({ timeout: 10_000 });
    for (const [action, off] of [
      ["healing-off", true],
      ["healing-on", false],
    ] as const) {
      await page
        .locator(`[data-testid="detail-healing-switch"][data-action="${action}"]`)
        .click({ timeout: 10_000 });
      await page.getByTestId("action-dialog").waitFor({ state: "visible" });
      expect(await page.getByTestId("admin-token-input").inputValue()).toBe(ADMIN_TOKEN);
      if (off) await page.getByTestId("action-reason").fill("dashboard switch test");
      await page.getByTestId("action-confirm").click();
      await page.getByTestId("action-dialog").waitFor({ state: "hidden", timeout: 15_000 });
      const state = page.getByTestId("switched-off-state");
      if (off) {
        await state.waitFor({ timeout: 15_000 });
        expect(await state.textContent()).toContain("gateway:admin");
        expect(await state.textContent()).toContain("dashboard switch test");
        expect(await disabled()).toMatchObject([{ name: "api", by: "gateway:admin" }]);
        // Unhealthy while off: held, not healed, shown on the page and counted in the banner.
        await makeUnhealthy(host.engine, api.id);
        const held = page.locator('[data-testid="detail-not-healing"][data-code="disabled"]');
        await held.waitFor({ timeout: 20_000 });
        expect(await held.textContent()).toBe("held: disabled");
        expect(await page.getByTestId("not-healing-state").textContent()).toContain("held");
        await page.screenshot({ path: join(RESULTS, "dashboard-switched-off.png") });
        await page.getByTestId("back").click();
        await row(page, api.id)
          .locator('[data-testid="not-healing-badge"][data-reason="held"]')
          .waitFor({ timeout: 10_000 });
        expect(await page.getByTestId("stat-not-healing").locator("dd").textContent()).toBe("1");
        await makeHealthy(host.engine, api.id);
        await row(page, api.id)
          .getByTestId("not-healing-badge")
          .waitFor({ state: "detached", timeout: 20_000 });
        await row(page, api.id).getByTestId("container-link").click();
        await page.getByTestId("detail-name").filter({ hasText: "api" }).waitFor();
      } else {
        await state.waitFor({ state: "detached", timeout: 15_000 });
        expect(await disabled()).toEqual([]);
      }
    }
    await page
      .getByTestId("event-feed")
      .locator(`[data-kind="remediation"][data-label="enabled"][data-container="${api.id}"]`)
      .first()
      .waitFor({ timeout: 15_000 });
    await page.getByTestId("back").click();
    await row(page, api.id).waitFor({ timeout: 10_000 });
  });

  it("fits a phone screen without horizontal scrolling", async () => {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const phone = await context.newPage();
      watchProblems(phone, "phone", pageProblems);
      await phone.goto(url);
      await phone
        .locator(`[data-testid="host-card"][data-host="${HOST}"]`)
        .waitFor({ timeout: 20_000 });
      await row(phone, web.id).waitFor({ timeout: 20_000 });
      await phone.getByTestId("feed-item").first().waitFor({ timeout: 10_000 });
      const widths = (await phone.evaluate(
        `({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
            view: window.innerWidth,
            widest: Math.max(...[...document.querySelectorAll("[data-testid=container-row], [data-testid=host-card], [data-testid=feed-item]")]
              .map((e) => e.getBoundingClientRect().right)) })`,
      )) as { doc: number; body: number; view: number; widest: number };
      expect(widths.view).toBe(390);
      expect(widths.doc).toBeLessThanOrEqual(widths.view);
      expect(widths.body).toBeLessThanOrEqual(widths.view);
      expect(widths.widest).toBeLessThanOrEqual(widths.view);
      await phone.screenshot({ path: join(RESULTS, "dashboard-phone.png"), fullPage: true });
    } finally {
      await context.close();
    }
    expect(pageProblems).toEqual([]);
  });
});
