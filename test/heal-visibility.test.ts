// "Not being healed", visible (issue 17): a container held by a maintenance window and one stuck
// after failed restarts show in the gateway's GET /health and in `fleetheal containers` (the CLI
// as a process against the gateway), with the hold's code and end and the failure; the "unhealed
// too long" alert goes out once per incident however many resyncs follow; and a health check
// that prints control characters reaches records and webhooks escaped, never raw.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commandSigningKeyFromSeed,
  generateCommandSigningSeed,
} from "../common/command-signing.js";
import { RemediationRecord } from "../contracts/index.js";
import { ContainerPage } from "../gateway/http/api-schemas.js";
import { HealthReport } from "../gateway/view/health-report.js";
import { makeUnhealthy, runTestContainer, waitForHealth } from "./support/containers.js";
import { type Fleet, type FleetHost, startFleet } from "./support/fleet.js";
import { runCommand } from "./support/fleetheal.js";
import { type HealWatch, watchHeal } from "./support/heal-watch.js";
import { waitFor } from "./support/wait.js";
import { startReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

const RESYNC_MS = 1_500;
const UNHEALED_AFTER_S = 2;
/**
 * Control characters a health check prints: ESC (a colour), SOH, and a CR that would overwrite
 * the line on a terminal; another line follows, since trailing whitespace is trimmed.
 */
const HOSTILE_OUTPUT = String.raw`\033[31mbad\001\r\nfailed\n`;
/** How they must look wherever fleetheal shows them: escaped, the newline kept. */
const ESCAPED = String.raw`\u001b[31mbad\u0001\u000d`;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

type NotHealingShown = HealthReport["notHealing"]["containers"][number];

/** The maintenance window on the first host: begun a minute ago, ends in ten. */
const windowEnd = new Date(Date.now() + 10 * 60_000).toISOString();

let fleet: Fleet;
let open: FleetHost;
let refusing: FleetHost;
let watch: HealWatch;
let hooks: WebhookReceiver;
let held: { id: string; name: string };
let stuck: { id: string; name: string };
let escaped: { id: string; name: string };

beforeAll(async () => {
  hooks = await startReceiver();
  // The second host's agent trusts another key than the handlers': every restart there is
  // refused, so each attempt fails and the container stays running and unhealthy.
  const stranger = commandSigningKeyFromSeed(generateCommandSigningSeed()).publicKey;
  fleet = await startFleet({
    nats: "plain",
    hosts: ["vis-open", { id: "vis-refusing", env: { FLEETHEAL_COMMAND_KEYS: stranger } }],
    gateway: true,
    heartbeatMs: 1_000,
    env: {
      agent: { FLEETHEAL_RECONCILE_INTERVAL_MS: String(RESYNC_MS) },
      handler: {
        FLEETHEAL_MAX_EVENT_AGE_MS: "2000",
        FLEETHEAL_COMMAND_TIMEOUT_MS: "3000",
        FLEETHEAL_NOTIFY_URLS: `json+${hooks.url}/hook`,
        FLEETHEAL_NOTIFY_EVENTS: "unhealed",
      },
    },
    policy: {
      notifyUnhealedAfterSeconds: UNHEALED_AFTER_S,
      maintenance: [
        {
          start: new Date(Date.now() - 60_000).toISOString(),
          end: windowEnd,
          hosts: ["vis-open"],
          reason: "visibility test",
        },
      ],
    },
  });
  fleet.defer(() => hooks.close());
  open = fleet.host("vis-open");
  refusing = fleet.host("vis-refusing");
  watch = await watchHeal(fleet);
  await fleet.waitForHosts();

  const opts = { healthIntervalMs: 1_000, healthTimeoutMs: 30_000 };
  [held, stuck, escaped] = await Promise.all([
    runTestContainer(open.engine, { name: "vis-held", labels: { autoheal: "true" }, ...opts }),
    runTestContainer(refusing.engine, {
      name: "vis-stuck",
      labels: {
        autoheal: "true",
        "autoheal.backoff.initial": "1s",
        "autoheal.backoff.max": "2s",
        "autoheal.budget.restarts": "30",
      },
      ...opts,
    }),
    runTestContainer(open.engine, {
      name: "vis-escaped",
      labels: { autoheal: "true" },
      healthcheckCommand: `printf '${HOSTILE_OUTPUT}'; exit 1`,
      ...opts,
    }),
  ]);
  await Promise.all([
    waitForHealth(open.engine, held.id, "healthy", 30_000),
    waitForHealth(refusing.engine, stuck.id, "healthy", 30_000),
  ]);
  await Promise.all([
    makeUnhealthy(open.engine, held.id),
    makeUnhealthy(refusing.engine, stuck.id),
  ]);
});

afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
});

async function notHealingShown(): Promise<NotHealingShown[]> {
  const res = await fetch(`${fleet.gateway.url}/health`);
  return HealthReport.parse(await res.json()).notHealing.containers;
}

/** The unhealed notifications the receiver got about a container, parsed. */
function unhealedHooks(containerId: string): { record: RemediationRecord; text: string }[] {
  return hooks.received
    .map((r) => JSON.parse(r.body) as { record: unknown; text: string })
    .map((b) => ({ record: RemediationRecord.parse(b.record), text: b.text }))
    .filter((b) => b.record.phase === "unhealed" && b.record.containerId === containerId);
}

describe("not being healed, visible", () => {
  it("shows a held and a stuck container in GET /health and in `fleetheal containers`", async () => {
    let shown: NotHealingShown[] = [];
    await waitFor(
      async () => {
        shown = await notHealingShown();
        const ids = new Set(shown.map((c) => c.id));
        return ids.has(held.id) && ids.has(stuck.id) && ids.has(escaped.id);
      },
      {
        timeoutMs: 40_000,
        intervalMs: 250,
        message: () => `GET /health never listed all three: ${JSON.stringify(shown)}`,
      },
    );
    const of = (id: string) => shown.find((c) => c.id === id);
    expect(of(held.id)).toMatchObject({ host: open.id, name: "vis-held", reason: "held" });
    expect(of(held.id)?.code).toBe("maintenance");
    expect
      .soft(
        new Date(Date.parse(of(held.id)?.until ?? "")).toISOString(),
        "a maintenance hold lasts until the window's end",
      )
      .toBe(windowEnd);
    expect(of(stuck.id)).toMatchObject({ host: refusing.id, name: "vis-stuck", reason: "stuck" });
    expect(of(stuck.id)?.code).not.toBe("");
    expect(of(stuck.id)?.message).not.toBe("");
    // Stuck means tried and failed: the refusing agent answered every attempt.
    expect(watch.records(stuck.id).some((r) => r.phase === "failed")).toBe(true);

    const env = { FLEETHEAL_GATEWAY_URL: fleet.gateway.url };
    const table = await runCommand(["containers"], env, 30_000);
    expect(table.code, table.lines.join("\n")).toBe(0);
    const line = (name: string) => table.lines.find((l) => new RegExp(`\\s${name}\\s`).test(l));
    expect(line("vis-held"), table.lines.join("\n")).toMatch(/\bheld\b.*\bmaintenance\b/);
    expect(line("vis-stuck"), table.lines.join("\n")).toMatch(/\bstuck\b/);
    expect(line("vis-stuck")).toContain(of(stuck.id)?.code);
    const json = await runCommand(["containers", "--json"], env, 30_000);
    expect(json.code, json.lines.join("\n")).toBe(0);
    const page = ContainerPage.parse(JSON.parse(json.lines.join("\n")));
    const listed = (id: string) => page.containers.find((c) => c.id === id)?.notHealing?.reason;
    expect([listed(held.id), listed(stuck.id)]).toEqual(["held", "stuck"]);
  });

  it("sends the unhealed alert once per incident, however many resyncs follow", async () => {
    const containers = [held, stuck, escaped];
    await waitFor(() => containers.every((c) => unhealedHooks(c.id).length > 0), {
      timeoutMs: 40_000,
      message: () =>
        `not every container's unhealed alert reached the webhook: ${containers
          .map((c) => `${c.name}=${unhealedHooks(c.id).length}`)
          .join(" ")}`,
    });
    // Three more resyncs of each: each is decided again, and none alerts again.
    await Promise.all(containers.map((c) => watch.waitForResyncs(c.id, 3, RESYNC_MS * 3 + 15_000)));
    for (const c of containers) {
      const unhealed = watch.records(c.id).filter((r) => r.phase === "unhealed");
      expect(unhealed, `${c.name}: unhealed records`).toHaveLength(1);
      expect(unhealedHooks(c.id), `${c.name}: unhealed notifications`).toHaveLength(1);
      const since = watch.events(c.id, "unhealthy")[0]?.time ?? "";
      expect(
        Date.parse(unhealed[0]?.at ?? "") - Date.parse(since),
        `${c.name}: alerted too early`,
      ).toBeGreaterThanOrEqual(UNHEALED_AFTER_S * 1000 - 200);
    }
    // The stuck one kept failing meanwhile: several attempts, still one alert.
    expect(watch.records(stuck.id).filter((r) => r.phase === "failed").length).toBeGreaterThan(1);
  });

  it("escapes a health check's control characters in events, records and notifications", async () => {
    const event = await waitFor(
      () => watch.events(escaped.id, "unhealthy").find((e) => e.healthOutput !== undefined),
      { timeoutMs: 20_000, message: "no unhealthy event carried the health check's output" },
    );
    expect(event.healthOutput).toContain(ESCAPED);
    const record = await watch.waitForRecord(
      escaped.id,
      (r) => r.phase === "unhealed",
      30_000,
      "no unhealed record",
    );
    expect(record.healthOutput).toContain(ESCAPED);
    expect(record.healthOutput).not.toMatch(RAW_CONTROL);
    const [hook] = unhealedHooks(escaped.id);
    expect(hook?.record.healthOutput).toBe(record.healthOutput);
    expect(hook?.text).not.toMatch(RAW_CONTROL);
    const raw = hooks.received.find((r) => r.body.includes(escaped.id))?.body ?? "";
    // In the JSON body the escape's backslash is itself escaped: never a control character.
    expect(raw).toContain(JSON.stringify(ESCAPED).slice(1, -1));
    expect(raw).not.toMatch(/(?<!\\)\\u001b/);
  });
});
