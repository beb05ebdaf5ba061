// Times, durations and ids as the page shows them.

/**
 * "5s ago", "in 3m", "just now".
 * @param {string | null | undefined} iso
 */
export function relTime(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const diff = Math.round((Date.now() - t) / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 5) return "just now";
  if (abs < 60) text = `${abs}s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)}m`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)}h`;
  else text = `${Math.floor(abs / 86400)}d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/**
 * The time of day, with the date when it is not today.
 * @param {string} iso
 */
export function clockTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/**
 * Hours and minutes, with the date when it is not today: the edges of a chart's buckets.
 * @param {string | number} at an ISO time or epoch milliseconds
 */
export function shortTime(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/**
 * A container id as Docker shows it: its first 12 characters.
 * @param {string | undefined} id
 */
export function shortId(id) {
  return typeof id === "string" ? id.slice(0, 12) : "";
}

/** @param {number | undefined} ms */
export function fmtDuration(ms) {
  if (typeof ms !== "number") return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** @param {number | undefined} seconds */
export function fmtUptime(seconds) {
  if (typeof seconds !== "number") return "—";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400)
    return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

/**
 * 3600 -> "1h", 90 -> "1m30s": policy windows as people write them.
 * @param {number} total seconds
 */
export function formatSeconds(total) {
  const parts = [];
  let rest = Math.max(0, Math.round(total));
  for (const [unit, size] of /** @type {const} */ ([
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ])) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join("") || "0s";
}

/**
 * The detail page's address of a container.
 * @param {string} host
 * @param {string} id
 */
export function containerHref(host, id) {
  return `#/containers/${encodeURIComponent(host)}/${encodeURIComponent(id)}`;
}
