import type { z } from "zod";
import {
  type ContainerPage,
  type ContainerSummary,
  ContainersQuery,
} from "../../gateway/http/api-schemas.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { optionIssue, wholeNumber } from "../option-values.js";
import { clockTime, relativeTime, renderTable, shortId, type TableOptions } from "../table.js";
import {
  clientFor,
  GATEWAY_COMMAND,
  GATEWAY_OPTIONS,
  printJson,
  tableMode,
  tableOptions,
} from "./shared.js";

const OPTIONS = {
  host: { type: "string", value: "<host>", description: "Only this host" },
  health: {
    type: "string",
    value: "<health>",
    description: "healthy, unhealthy, starting or none (no health check)",
  },
  state: {
    type: "string",
    value: "<state>",
    description: "Docker's state: running, exited, restarting, paused, created, dead…",
  },
  label: {
    type: "string",
    value: "<k[=v]>",
    description:
      "Has this label (key, or key=value); only the labels agents publish: the opt-in label, <opt-in label>.*, autoheal.*, fleetheal.* and com.docker.compose.*",
  },
  name: { type: "string", value: "<text>", description: "Name contains this, any case" },
  quarantined: {
    type: "boolean",
    description: "Only quarantined containers (--quarantined=false: only the others)",
  },
  "opted-in": {
    type: "boolean",
    description: "Only opted-in containers (--opted-in=false: only the others)",
  },
  limit: {
    type: "string",
    value: "<n>",
    description: "Containers per page, 1-1000 [100]",
  },
  cursor: {
    type: "string",
    value: "<next>",
    description: "Start after this `next` of a previous --json page",
  },
  all: {
    type: "boolean",
    short: "a",
    description: "Follow every page, not just the first",
  },
  ...tableOptions(
    "Print only `<host> <id>` (the short id) per container, for xargs -n2 fleetheal restart",
  ),
  ...GATEWAY_OPTIONS,
} as const;

/** The API's query parameter each option sets, to name the option in a validation error. */
const FLAG_OF: Record<string, string> = { optedIn: "opted-in" };

/** `fleetheal containers`: containers across the fleet, filtered and paged like GET /containers. */
export const containers = defineCommand({
  ...GATEWAY_COMMAND,
  name: "containers",
  summary:
    "Containers across the fleet, filtered and paged like GET /containers: --host, --health, --state, --label, --name, --quarantined, --opted-in, --limit, --all.",
  description: `Containers across the fleet from GET /containers, ordered by host, name and id. Every
filter is optional, and they combine with AND. One page (--limit) by default; --all
follows the pages to the end (with --json: one document holding every container).`,
  options: OPTIONS,
  notes: `Examples:
  fleetheal containers --health unhealthy
  fleetheal containers --host web-1 --label com.docker.compose.project=shop --all --json
  fleetheal containers --health unhealthy -q --all | xargs -n2 fleetheal restart`,
  async run({ options }, ctx) {
    const mode = tableMode(options);
    if (options.limit !== undefined) wholeNumber("limit", options.limit, 1, 1000);
    const query = parseQuery({
      host: options.host,
      health: options.health,
      state: options.state,
      label: options.label,
      name: options.name,
      quarantined: flag(options.quarantined),
      optedIn: flag(options["opted-in"]),
      limit: options.limit,
      cursor: options.cursor,
    });
    const client = clientFor(options, ctx, { action: false });
    let page = await client.containers(query);
    let json = page.json as ContainerPage;
    if (options.all) {
      // One document, as if the API had answered with a single page: no `next`.
      const rows = [...page.value.containers];
      const raw = [...json.containers];
      while (page.value.next !== undefined) {
        page = await client.containers({ ...query, cursor: page.value.next });
        rows.push(...page.value.containers);
        raw.push(...(page.json as ContainerPage).containers);
      }
      json = { containers: raw, total: page.value.total };
      page = { value: { containers: rows, total: page.value.total }, json };
    }
    if (mode === "json") {
      printJson(ctx, json);
      return EXIT.OK;
    }
    const { containers: rows, total, next } = page.value;
    if (mode === "quiet") {
      for (const c of rows) ctx.io.out(`${c.host} ${shortId(c.id)}`);
    } else if (rows.length === 0) {
      // On stderr when the table has no header either: a script reads an empty stdout.
      const none = total === 0 ? "no containers match" : "no more containers";
      if (mode.headers) ctx.io.out(none);
      else ctx.io.err(none);
      return EXIT.OK;
    } else {
      for (const line of renderContainers(rows, ctx.now(), mode)) ctx.io.out(line);
    }
    if (next !== undefined) {
      ctx.io.err(`${rows.length} of ${total} containers shown: --all for every page`);
    }
    return EXIT.OK;
  },
});

function flag(value: boolean | undefined): string | undefined {
  return value === undefined ? undefined : value ? "1" : "0";
}

/**
 * Checked with the API's own query schema before anything is sent, so a bad filter is a usage
 * error (exit 2) naming the option, not a 400 from the gateway.
 */
function parseQuery(raw: Record<string, string | undefined>): z.infer<typeof ContainersQuery> {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = ContainersQuery.safeParse(given);
  if (!parsed.success) throw optionIssue(parsed.error, given, (f) => FLAG_OF[f] ?? f);
  return parsed.data;
}

export function renderContainers(
  rows: readonly ContainerSummary[],
  now: number,
  options: TableOptions = {},
): string[] {
  return renderTable<ContainerSummary>(
    [
      {
        header: "HOST",
        value: (c) => (c.hostStatus === "up" ? c.host : `${c.host} (${c.hostStatus})`),
      },
      { header: "NAME", value: (c) => c.name },
      { header: "ID", value: (c) => shortId(c.id) },
      { header: "IMAGE", value: (c) => c.image },
      { header: "STATE", value: (c) => c.state },
      {
        header: "HEALTH",
        value: (c) => (c.healthSource === "probe" ? `${c.health} (probe)` : c.health),
      },
      { header: "OPTED IN", value: (c) => (c.optedIn ? "yes" : "no") },
      { header: "QUARANTINED", value: (c) => (c.quarantined ? "yes" : "no") },
      { header: "HEALING", value: (c) => notHealingText(c.notHealing, now) },
      { header: "RESTARTS", value: (c) => String(c.restarts), align: "right" },
      { header: "LAST RESTART", value: (c) => relativeTime(c.lastRestartAt, now) },
      { header: "STARTED", value: (c) => relativeTime(c.startedAt, now) },
    ],
    rows,
    options,
  );
}

/**
 * Why fleetheal is not healing a container, in a few words: `held: backoff until 10:32:05`,
 * `stuck: docker-error`; `-` while nothing stops it.
 */
export function notHealingText(reason: ContainerSummary["notHealing"], now: number): string {
  if (!reason) return "-";
  const until = reason.until === undefined ? "" : ` until ${clockTime(reason.until, now)}`;
  return `${reason.reason}: ${reason.code}${until}`;
}
