import type { RemediationPhase, RemediationRecord } from "../../contracts/index.js";
import type { TargetKind } from "./targets.js";

/** What is POSTed to a target (the URL and credentials come from the target itself). */
export interface NotifyPayload {
  /** Content-Type and the kind's own headers (ntfy's Title, Priority, Tags). Never secret. */
  headers: Record<string, string>;
  body: string;
}

/** `type` of the generic JSON payload. */
export const NOTIFY_JSON_TYPE = "fleetheal.notify.v1.remediation";

/** How bad a phase is, in Apprise's words (also the generic JSON payload's `severity`). */
export type Severity = "info" | "success" | "warning" | "failure";

export const SEVERITY: Record<RemediationPhase, Severity> = {
  decided: "info",
  restarting: "info",
  restarted: "success",
  failed: "failure",
  skipped: "info",
  quarantined: "warning",
  released: "success",
  stopped: "warning",
  recreated: "success",
  alerted: "warning",
  unhealed: "failure",
  disabled: "info",
  enabled: "info",
};

/** What happened, after the container's name. */
const PHASE_WORDS: Record<RemediationPhase, string> = {
  decided: "restart decided",
  restarting: "restarting",
  restarted: "restarted",
  failed: "restart failed",
  skipped: "restart skipped",
  quarantined: "quarantined",
  released: "released from quarantine",
  stopped: "stopped (unhealthy)",
  recreated: "recreated",
  alerted: "is unhealthy",
  unhealed: "unhealthy and not being healed",
  disabled: "healing switched off",
  enabled: "healing switched on",
};

/** ntfy priority (1 min … 5 max) and tags (emoji short codes) per phase. */
const NTFY: Record<RemediationPhase, { priority: number; emoji: string }> = {
  decided: { priority: 2, emoji: "bulb" },
  restarting: { priority: 2, emoji: "hourglass_flowing_sand" },
  restarted: { priority: 3, emoji: "white_check_mark" },
  failed: { priority: 4, emoji: "x" },
  skipped: { priority: 2, emoji: "fast_forward" },
  quarantined: { priority: 5, emoji: "rotating_light" },
  released: { priority: 3, emoji: "unlock" },
  stopped: { priority: 4, emoji: "stop_sign" },
  recreated: { priority: 3, emoji: "recycle" },
  alerted: { priority: 4, emoji: "warning" },
  unhealed: { priority: 5, emoji: "rotating_light" },
  disabled: { priority: 2, emoji: "no_bell" },
  enabled: { priority: 2, emoji: "bell" },
};

/** Discord rejects longer messages. */
const DISCORD_MAX = 2000;

const JSON_HEADERS = { "Content-Type": "application/json" };

/** `web restarted on host-a` */
export function notifyTitle(record: RemediationRecord): string {
  const name = record.containerName || record.containerId.slice(0, 12);
  return `${name} ${PHASE_WORDS[record.phase]} on ${record.host}`;
}

/**
 * `restarted (stop timeout 10s) [code restarted, container 4f1c2b3a9d8e]`, and the health
 * check's last output on the lines after it, as the agent escaped it (no control characters
 * reach a chat or a terminal).
 */
export function notifyDetail(record: RemediationRecord): string {
  const facts = [`code ${record.code}`, `container ${record.containerId.slice(0, 12)}`];
  if (record.attempt) facts.push(`attempt ${record.attempt}`);
  if (record.until) facts.push(`until ${record.until}`);
  if (record.dryRun) facts.push("dry run");
  const message = record.message.trim();
  const line = `${message ? `${message} ` : ""}[${facts.join(", ")}]`;
  return record.healthOutput ? `${line}\nhealth check: ${record.healthOutput}` : line;
}

/** One line for people: `[fleetheal] web restarted on host-a: <detail>`. */
export function notifyText(record: RemediationRecord): string {
  return `[fleetheal] ${notifyTitle(record)}: ${notifyDetail(record)}`;
}

/** The request body and headers for one record and one kind of target. */
export function buildPayload(kind: TargetKind, record: RemediationRecord): NotifyPayload {
  switch (kind) {
    case "json":
      return json({
        type: NOTIFY_JSON_TYPE,
        v: 1,
        title: notifyTitle(record),
        text: notifyText(record),
        severity: SEVERITY[record.phase],
        record,
      });
    case "slack":
      return json({ text: slackEscape(notifyText(record)) });
    case "discord":
      return json({
        content: truncate(notifyText(record), DISCORD_MAX),
        // A container name or message must never ping @everyone.
        allowed_mentions: { parse: [] },
      });
    case "ntfy": {
      const { priority, emoji } = NTFY[record.phase];
      return {
        headers: {
          "Content-Type": "text/plain; charset=utf-8",
          Title: headerSafe(`fleetheal: ${notifyTitle(record)}`),
          Priority: String(priority),
          Tags: headerSafe(`${emoji},fleetheal,${record.host}`),
        },
        body: notifyDetail(record),
      };
    }
    case "apprise":
      return json({
        title: `fleetheal: ${notifyTitle(record)}`,
        body: notifyDetail(record),
        type: SEVERITY[record.phase],
      });
  }
}

function json(value: unknown): NotifyPayload {
  return { headers: { ...JSON_HEADERS }, body: JSON.stringify(value) };
}

/** Slack's mrkdwn treats `&`, `<` and `>` as markup; these three must be escaped. */
function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** HTTP header values must be printable ASCII here; anything else becomes `?`. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 512);
}
