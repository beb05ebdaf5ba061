import type { ContainerDetail, StreamRecord } from "../../gateway/http/api-schemas.js";
import { defineCommand } from "../command.js";
import { history } from "../event-feed.js";
import { EXIT } from "../exit-codes.js";
import type { GatewayClient } from "../gateway-client.js";
import { sinceValue, wholeNumber } from "../option-values.js";
import { clockTime, printable, relativeTime, shortId } from "../table.js";
import { renderRecords } from "./events.js";
import {
  CONTAINER_POSITIONALS,
  clientFor,
  containerArgs,
  GATEWAY_COMMAND,
  GATEWAY_OPTIONS,
  printJson,
} from "./shared.js";

const OPTIONS = {
  records: {
    type: "string",
    value: "<n>",
    description: "How many of its last records to show, 0-100 [10]",
  },
  since: {
    type: "string",
    value: "<when>",
    description: "How far back to look for them (30m, 2h, 1d, up to 7d) or an ISO-8601 time [1d]",
  },
  ...GATEWAY_OPTIONS,
} as const;

/**
 * History is read oldest first, page by page, for the last records: a container that flapped
 * all day stops the read here rather than paging on.
 */
const MAX_RECORDS_READ = 20_000;

/** `fleetheal describe <host> <container>`: one container and how fleetheal heals it. */
export const describe = defineCommand({
  ...GATEWAY_COMMAND,
  name: "describe",
  summary:
    "One container in detail: its state and last health check, the policy in effect for it, the budget used, backoff, quarantine, why it is not being healed, and its last records.",
  description: `One container from GET /containers/<host>/<container>: its state and last health check
output, the policy in effect for it (the fleet policy with its labels applied, and labels
that were ignored), the restart budget used in its window, the backoff, quarantine, whether
healing is switched off or held, and its last records from the history (GET /events).
<container> is a full id, a unique id prefix (4+ characters) or the name. --json prints the
API's document with a "records" array added.`,
  options: OPTIONS,
  positionals: CONTAINER_POSITIONALS,
  notes: `Exit code 1 when the host or the container is not known to the gateway.
Example:
  fleetheal describe web-1 api --records 20 --since 2d`,
  async run({ options, positionals }, ctx) {
    const [host, ref] = containerArgs(positionals);
    const keep =
      options.records === undefined ? 10 : wholeNumber("records", options.records, 0, 100);
    const since = sinceValue(options.since ?? "1d", ctx.now());
    const client = clientFor(options, ctx, { action: false });
    const detail = await client.container(host, ref);
    const last =
      keep === 0 ? { items: [], cut: false } : await lastRecords(client, detail.value, since, keep);
    if (options.json) {
      printJson(ctx, { ...(detail.json as object), records: last.items.map((i) => i.json) });
      return EXIT.OK;
    }
    for (const line of describeContainer(detail.value, ctx.now())) ctx.io.out(line);
    if (keep > 0) {
      ctx.io.out("");
      ctx.io.out(`Last records (since ${options.since ?? "1d"}):`);
      const records = last.items.map((i) => i.record);
      if (records.length === 0) ctx.io.out("  none");
      for (const line of renderRecords(records, ctx.now())) {
        if (records.length > 0) ctx.io.out(`  ${line}`);
      }
      if (last.cut) {
        ctx.io.err(
          `more than ${MAX_RECORDS_READ} records since ${options.since ?? "1d"}: these are the last of the first ${MAX_RECORDS_READ}; give a shorter --since`,
        );
      }
    }
    return EXIT.OK;
  },
});

async function lastRecords(
  client: GatewayClient,
  detail: ContainerDetail,
  since: string,
  keep: number,
): Promise<{ items: { record: StreamRecord; json: unknown }[]; cut: boolean }> {
  const items: { record: StreamRecord; json: unknown }[] = [];
  let read = 0;
  for await (const item of history(
    client,
    { host: detail.host, container: detail.container.id, since },
    { pageSize: 1000 },
  )) {
    items.push(item);
    if (items.length > keep) items.shift();
    if (++read >= MAX_RECORDS_READ) return { items, cut: true };
  }
  return { items, cut: false };
}

/** The container's detail as `label: value` lines, then the policy in effect. */
export function describeContainer(d: ContainerDetail, now: number): string[] {
  const c = d.container;
  const h = d.healing;
  const when = (iso: string | undefined) =>
    iso === undefined ? "-" : `${clockTime(iso, now)} (${relativeTime(iso, now)})`;
  const rows: [string, string][] = [
    ["Container", `${c.name} (${shortId(c.id)})`],
    ["Host", d.hostStatus === "up" ? d.host : `${d.host} (${d.hostStatus})`],
    ["Image", c.image],
    [
      "State",
      `${c.state}${c.exitCode === undefined ? "" : ` (exit ${c.exitCode})`}${c.startedAt === undefined ? "" : `, started ${when(c.startedAt)}`}`,
    ],
    [
      "Health",
      `${c.health}${c.healthSource === "probe" ? " (label probe)" : ""}${c.failingStreak > 0 ? `, ${c.failingStreak} failed checks in a row` : ""}`,
    ],
    ...(c.lastHealthOutput === undefined
      ? []
      : [["Last check", c.lastHealthOutput] as [string, string]]),
    ["Opted in", c.optedIn ? "yes" : "no"],
    ["Healing", healingText(d, now)],
    [
      "Quarantine",
      h.quarantine ? `since ${when(h.quarantine.since)}: ${h.quarantine.reason}` : "no",
    ],
    ["Backoff until", when(h.backoffUntil)],
    [
      "Budget",
      `${h.budget.used} of ${h.budget.allowed} restarts used in ${windowText(h.budget.windowSeconds)}`,
    ],
    [
      "Restarts",
      `${h.restarts.length} by fleetheal, ${h.consecutiveRestarts} in a row; last ${when(h.lastRestartAt)}`,
    ],
    ...(h.releasedAt === undefined ? [] : [["Released", when(h.releasedAt)] as [string, string]]),
    ...(h.healthySince === undefined
      ? []
      : [["Healthy since", when(h.healthySince)] as [string, string]]),
    ...(h.labelErrors.length === 0
      ? []
      : [["Label errors", h.labelErrors.join("; ")] as [string, string]]),
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return [
    ...rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${printable(v)}`),
    "",
    "Policy in effect (the fleet policy with the container's labels applied):",
    ...policyLines(h.policy).map((l) => `  ${l}`),
  ];
}

function healingText(d: ContainerDetail, now: number): string {
  const h = d.healing;
  if (h.switchedOff) {
    const s = h.switchedOff;
    return `switched off by ${s.by} ${relativeTime(s.since, now)}${s.reason ? `: ${s.reason}` : ""}`;
  }
  if (h.notHealing) {
    const n = h.notHealing;
    const until = n.until === undefined ? "" : ` until ${clockTime(n.until, now)}`;
    return `${n.reason}: ${n.code}${until}: ${n.message}`;
  }
  if (h.quarantined) {
    return `quarantined: held until released (fleetheal release ${d.host} ${d.container.name})`;
  }
  return h.policy.paused ? "paused fleet-wide" : "nothing holds it";
}

function windowText(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/**
 * Every field of the policy as `path  value`, nested fields by their dotted path: the same
 * names as in docs/POLICY.md and in `policy get`. Long lists are counted, not printed.
 */
export function policyLines(policy: object): string[] {
  const rows: [string, string][] = [];
  const walk = (value: unknown, path: string) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
      return;
    }
    const text = JSON.stringify(value) ?? "null";
    rows.push([
      path,
      Array.isArray(value) && text.length > 80
        ? `${value.length} entries (policy get lists them)`
        : text,
    ]);
  };
  walk(policy, "");
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${printable(v)}`);
}
