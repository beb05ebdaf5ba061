import { EventKind, EventsQuery, type StreamRecord } from "../../gateway/http/api-schemas.js";
import { UsageError } from "../args.js";
import { type CommandContext, defineCommand } from "../command.js";
import { followEvents, history } from "../event-feed.js";
import { EXIT } from "../exit-codes.js";
import type { GatewayClient } from "../gateway-client.js";
import { optionIssue, sinceValue, wholeNumber } from "../option-values.js";
import { printable, relativeTime, renderTable, type TableOptions } from "../table.js";
import {
  clientFor,
  GATEWAY_COMMAND,
  GATEWAY_OPTIONS,
  NO_HEADERS_OPTION,
  printJson,
  tableMode,
} from "./shared.js";

const OPTIONS = {
  host: { type: "string", value: "<host>", description: "Only this host" },
  container: {
    type: "string",
    value: "<container>",
    description:
      "Only this container: a full id, or a name or id prefix (looked up on --host, or by name across the fleet)",
  },
  kind: {
    type: "string",
    value: "<kind>",
    description: "event (Docker transitions) or remediation (fleetheal's healing steps)",
  },
  since: {
    type: "string",
    value: "<when>",
    description:
      "From this far back (30s, 15m, 2h, 1d, up to 7d: the history's retention) or this ISO-8601 time [1h; with --follow: only new records unless given]",
  },
  limit: {
    type: "string",
    value: "<n>",
    description: "Records per page, 1-1000 [100]",
  },
  all: {
    type: "boolean",
    short: "a",
    description: "Follow every page, not just the first",
  },
  follow: {
    type: "boolean",
    short: "f",
    description:
      "Keep printing records as they happen (GET /events/stream), reconnecting with Last-Event-ID when the connection drops, until Ctrl-C",
  },
  ...NO_HEADERS_OPTION,
  ...GATEWAY_OPTIONS,
} as const;

/** `fleetheal events`: event history, or the live feed with `--follow`. */
export const events = defineCommand({
  ...GATEWAY_COMMAND,
  name: "events",
  summary:
    "Event and remediation history (--host, --container, --kind, --since); --follow prints them live (SSE), resuming with Last-Event-ID when the connection drops.",
  description: `Docker transitions and fleetheal's remediation records from the events stream, oldest
first (GET /events). With --follow, records are printed as they are stored
(GET /events/stream); with --follow --json, one JSON object per line.`,
  options: OPTIONS,
  notes: `Examples:
  fleetheal events --since 15m --kind remediation
  fleetheal events --host web-1 --container api --follow`,
  async run({ options }, ctx) {
    const mode = tableMode(options);
    if (options.limit !== undefined) wholeNumber("limit", options.limit, 1, 1000);
    // Days are the CLI's: the API takes the same time back in seconds.
    const since = options.since === undefined ? undefined : sinceValue(options.since, ctx.now());
    const given = {
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(since === undefined ? {} : { since }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    };
    const query = EventsQuery.pick({ host: true, since: true, limit: true }).safeParse(given);
    if (!query.success) throw optionIssue(query.error, given);
    const kind = options.kind === undefined ? undefined : EventKind.safeParse(options.kind);
    if (kind && !kind.success) {
      throw new UsageError(
        `--kind: expected event or remediation, got ${JSON.stringify(options.kind)}`,
      );
    }
    if (options.follow && options.all) {
      throw new UsageError("--follow prints every record already: leave out --all");
    }
    if (options.follow && options["no-headers"]) {
      throw new UsageError("--follow prints no header line: leave out --no-headers");
    }
    const table = mode === "json" || mode === "quiet" ? {} : mode;
    const client = clientFor(options, ctx, { action: false });
    const container =
      options.container === undefined
        ? undefined
        : await containerId(client, options.host, options.container);
    const filter = {
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(container === undefined ? {} : { container }),
      ...(kind?.data === undefined ? {} : { kind: kind.data }),
    };
    if (options.follow) {
      return follow(client, filter, { ...options, ...(since === undefined ? {} : { since }) }, ctx);
    }

    const first = { ...filter, ...query.data };
    if (options.all) {
      const all: { record: StreamRecord; json: unknown }[] = [];
      // Without --limit, big pages: --all wants everything, and fewer round trips.
      const pageSize = options.limit === undefined ? 1000 : query.data.limit;
      for await (const item of history(client, first, { pageSize })) {
        all.push(item);
      }
      if (options.json) printJson(ctx, { records: all.map((i) => i.json) });
      else
        printHistory(
          ctx,
          all.map((i) => i.record),
          table,
        );
      return EXIT.OK;
    }
    const page = await client.events(first);
    if (options.json) printJson(ctx, page.json);
    else printHistory(ctx, page.value.records, table);
    if (!options.json && page.value.next !== undefined) {
      ctx.io.err(`more records after ${page.value.next}: --all for every page`);
    }
    return EXIT.OK;
  },
});

async function follow(
  client: GatewayClient,
  filter: Parameters<typeof followEvents>[1]["filter"],
  options: { since?: string; limit?: string; json?: boolean },
  ctx: CommandContext,
): Promise<number> {
  const feed = followEvents(client, {
    filter,
    ...(options.since === undefined ? {} : { since: options.since }),
    ...(options.limit === undefined ? {} : { pageSize: Number(options.limit) }),
    signal: ctx.signal,
    now: ctx.now,
    notice: (text) => ctx.io.err(text),
    ...(ctx.reconnectDelayMs === undefined ? {} : { reconnectDelayMs: ctx.reconnectDelayMs }),
  });
  for await (const { record, json } of feed) {
    ctx.io.out(options.json ? JSON.stringify(json) : followLine(record));
  }
  return EXIT.OK;
}

function printHistory(
  ctx: CommandContext,
  records: readonly StreamRecord[],
  options: TableOptions,
): void {
  if (records.length === 0) {
    // On stderr without headers: a script reads an empty stdout.
    if (options.headers === false) ctx.io.err("no records");
    else ctx.io.out("no records");
    return;
  }
  for (const line of renderRecords(records, ctx.now(), options)) ctx.io.out(line);
}

/** History as a table: when, host, container, kind, what and detail. */
export function renderRecords(
  records: readonly StreamRecord[],
  now: number,
  options: TableOptions = {},
): string[] {
  return renderTable<StreamRecord>(
    [
      { header: "WHEN", value: (r) => relativeTime(timeOf(r), now) },
      { header: "HOST", value: (r) => hostOf(r) },
      { header: "CONTAINER", value: (r) => nameOf(r) },
      { header: "KIND", value: (r) => r.kind },
      { header: "WHAT", value: (r) => whatOf(r) },
      { header: "DETAIL", value: (r) => detailOf(r) },
    ],
    records,
    options,
  );
}

/**
 * A followed record on one line. Columns have fixed widths here: the table cannot be aligned
 * to rows that have not arrived yet.
 */
export function followLine(r: StreamRecord): string {
  return [
    localTime(timeOf(r)),
    printable(hostOf(r)).padEnd(12),
    printable(nameOf(r)).padEnd(20),
    r.kind.padEnd(11),
    whatOf(r).padEnd(12),
    printable(detailOf(r)),
  ]
    .join("  ")
    .trimEnd();
}

function timeOf(r: StreamRecord): string {
  return r.kind === "event" ? r.event.time : r.remediation.at;
}

function hostOf(r: StreamRecord): string {
  return r.kind === "event" ? r.event.host : r.remediation.host;
}

function nameOf(r: StreamRecord): string {
  return r.kind === "event" ? r.event.container.name : r.remediation.containerName;
}

function whatOf(r: StreamRecord): string {
  return r.kind === "event" ? r.event.action : r.remediation.phase;
}

function detailOf(r: StreamRecord): string {
  if (r.kind === "remediation") {
    const m = r.remediation;
    return `${m.code}: ${m.message} [${m.actor}]${m.dryRun ? " (dry run)" : ""}`;
  }
  const e = r.event;
  return [
    e.exitCode === undefined ? undefined : `exit ${e.exitCode}`,
    e.signal === undefined ? undefined : `signal ${e.signal}`,
    e.stopped ? "stopped" : undefined,
    e.source === "docker" ? undefined : `(seen by ${e.source})`,
  ]
    .filter((part) => part !== undefined)
    .join(", ");
}

/** `2026-11-27 21:00:00` in the local time zone, as `docker events` prints times. */
function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * Events are filtered by full container id. A name or an id prefix is looked up first: on its
 * host when --host is given (names and prefixes as in the API's paths), else by exact name
 * across the fleet, which must then be unambiguous.
 */
async function containerId(
  client: GatewayClient,
  host: string | undefined,
  ref: string,
): Promise<string> {
  if (/^[0-9a-f]{64}$/.test(ref)) return ref;
  if (host !== undefined) return (await client.container(host, ref)).value.container.id;
  const found: { host: string; id: string }[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.containers({
      name: ref,
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const c of page.value.containers) if (c.name === ref) found.push(c);
    cursor = page.value.next;
  } while (cursor !== undefined);
  const [only, ...more] = found;
  if (!only) {
    throw new UsageError(
      `--container: no container is named ${ref}; give --host to look it up by id prefix there`,
    );
  }
  if (more.length > 0) {
    throw new UsageError(
      `--container: ${ref} names containers on ${found.map((c) => c.host).join(", ")}; add --host`,
    );
  }
  return only.id;
}
