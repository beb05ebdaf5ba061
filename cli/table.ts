/** A column of a human-readable table. */
export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
}

/** How a table is printed: `--no-headers` leaves out its header line, for scripts. */
export interface TableOptions {
  headers?: boolean;
}

/**
 * Renders rows as aligned columns separated by two spaces, with a header line (unless
 * `headers: false`), as `docker ps` does. Widths count characters, and control characters in
 * values (a hostile container name could carry terminal escapes) are shown escaped rather than
 * sent to the terminal.
 */
export function renderTable<T>(
  columns: readonly Column<T>[],
  rows: readonly T[],
  options: TableOptions = {},
): string[] {
  const cells = rows.map((row) => columns.map((c) => printable(c.value(row))));
  const widths = columns.map((c, i) =>
    Math.max([...c.header].length, ...cells.map((r) => [...(r[i] as string)].length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => {
        const pad = " ".repeat((widths[i] as number) - [...v].length);
        const last = i === values.length - 1;
        if (columns[i]?.align === "right") return pad + v;
        return last ? v : v + pad;
      })
      .join("  ")
      .trimEnd();
  const body = cells.map(line);
  return options.headers === false ? body : [line(columns.map((c) => c.header)), ...body];
}

/** Replaces control characters with visible escapes. */
export function printable(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 0x1b ? "\\e" : `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/** `5s ago`, `3m ago`, `2h ago`, `4d ago`; `in 5m` for a future time; `-` when unknown. */
export function relativeTime(iso: string | undefined, now: number): string {
  if (iso === undefined) return "-";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const diff = now - at;
  const span = shortDuration(Math.abs(diff));
  if (Math.abs(diff) < 1_000) return "just now";
  return diff >= 0 ? `${span} ago` : `in ${span}`;
}

/** The largest unit only, as people say it: `45s`, `12m`, `3h`, `2d`. */
export function shortDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** A Docker-style short id. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/**
 * A time people read against their clock: `10:32:05` (local) within a day of `now`, else
 * `2026-11-28 10:32` (local); the text as given when it is not a time.
 */
export function clockTime(iso: string, now: number): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, "0");
  const time = `${two(at.getHours())}:${two(at.getMinutes())}`;
  if (Math.abs(at.getTime() - now) < 86_400_000) return `${time}:${two(at.getSeconds())}`;
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${time}`;
}
