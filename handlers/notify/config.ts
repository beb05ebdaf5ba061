import { z } from "zod";
import { intFromEnv } from "../../common/config.js";
import { ConfigError } from "../../common/errors.js";
import { RemediationPhase } from "../../contracts/index.js";
import {
  NOTIFY_URLS_ENV,
  NotifyTarget,
  parseTargets,
  redactUrl,
  type TargetKind,
} from "./targets.js";

/** The phases notified when FLEETHEAL_NOTIFY_EVENTS is not set: outcomes, not steps. */
export const DEFAULT_NOTIFY_EVENTS: readonly RemediationPhase[] = [
  "restarted",
  "failed",
  "quarantined",
  "released",
  "stopped",
  "recreated",
  "alerted",
  "unhealed",
];

/** The notify handler's settings, validated. */
export interface NotifyConfig {
  targets: NotifyTarget[];
  /** Phases to send; records of other phases are ignored. */
  events: RemediationPhase[];
  /** Per-attempt HTTP timeout. */
  timeoutMs: number;
  /** Records older than this (by their `at`) are not sent: late alerts are noise. */
  maxAgeMs: number;
  /**
   * autoheal variables that were set but are not used (FLEETHEAL_NOTIFY_URLS wins over them),
   * one sentence each, for the handler to log as it starts. Never holds a URL.
   */
  notes: string[];
}

const PHASES = RemediationPhase.options;
const PHASE_LIST = `${PHASES.join(", ")}, or "all"`;
const Phase = z.enum(PHASES, {
  error: (issue) => `${JSON.stringify(issue.input)} is not a phase (expected ${PHASE_LIST})`,
});
const Events = z
  .string()
  .transform((raw) => raw.split(/[\s,]+/).filter((p) => p.length > 0))
  .transform((phases) => (phases.length === 1 && phases[0] === "all" ? PHASES : phases))
  .pipe(z.array(Phase).min(1, `must list phases (${PHASE_LIST})`));

/**
 * The autoheal container posts `{"<WEBHOOK_JSON_KEY>": "<message>"}` to WEBHOOK_URL. Two keys
 * have a kind of target whose body carries the message under the same key.
 */
const WEBHOOK_KINDS = { text: "slack", content: "discord" } as const satisfies Record<
  string,
  TargetKind
>;
const WebhookJsonKey = z.enum(["text", "content"], {
  error: (issue) =>
    `fleetheal can post the message under "text" (a slack target) or "content" (a discord target), not ${JSON.stringify(issue.input)}; for another receiver list it in ${NOTIFY_URLS_ENV} (docs/MIGRATING.md)`,
});
/**
 * Unset, the key is `content`: the autoheal image sets `ENV WEBHOOK_JSON_KEY=content`, which is
 * what its users' receivers get (its script's own fallback, `text`, never applies in the image;
 * willfarrell/docker-autoheal#152). Older images without the variable sent `text`.
 */
const DEFAULT_WEBHOOK_JSON_KEY = "content";

/** The rule parseTargets applies to every FLEETHEAL_NOTIFY_URLS entry. */
const HttpUrl = z.url({ protocol: /^https?$/ });

/** The non-secret variables, validated like every other variable. */
export const PLAIN_VARIABLES = {
  FLEETHEAL_NOTIFY_EVENTS: Events.optional(),
  FLEETHEAL_NOTIFY_TIMEOUT_MS: intFromEnv({ min: 100, max: 60_000, default: 5_000 }),
  FLEETHEAL_NOTIFY_MAX_AGE_MS: intFromEnv({ min: 1_000, max: 604_800_000, default: 3_600_000 }),
  WEBHOOK_JSON_KEY: WebhookJsonKey.default(DEFAULT_WEBHOOK_JSON_KEY),
} as const;

/**
 * Reads the notify settings. Returns undefined when no target is set (the notify handler is not
 * bound then); the other variables are validated either way. Every problem is reported at once;
 * a bad target is named by its position and redacted form, never its URL, because webhook URLs
 * are credentials.
 *
 * The targets are FLEETHEAL_NOTIFY_URLS, or, when it is not set, the autoheal container's
 * WEBHOOK_URL (a slack or discord target, by WEBHOOK_JSON_KEY) and APPRISE_URL (an apprise
 * target), so that its environment carries over; docs/MIGRATING.md compares the payloads.
 */
export function loadNotifyConfig(env: NodeJS.ProcessEnv = process.env): NotifyConfig | undefined {
  const problems: string[] = [];
  const value = (name: string) => (env[name] === "" ? undefined : env[name]);

  const rawUrls = value(NOTIFY_URLS_ENV);
  const parsed = parseTargets(rawUrls ?? "");
  for (const problem of parsed.problems) problems.push(`  ${NOTIFY_URLS_ENV}: ${problem}`);

  const plain: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(PLAIN_VARIABLES)) {
    const raw = value(name);
    const result = schema.safeParse(raw);
    if (result.success) plain[name] = result.data;
    else {
      const message = result.error.issues.map((i) => i.message).join("; ");
      problems.push(`  ${name}${raw === undefined ? "" : `=${JSON.stringify(raw)}`}: ${message}`);
    }
  }

  // The autoheal variables are validated even when FLEETHEAL_NOTIFY_URLS wins, like every
  // variable fleetheal reads. Without a valid WEBHOOK_JSON_KEY (already reported) there is no
  // kind to check WEBHOOK_URL as.
  const legacy: LegacyTarget[] = [];
  const webhookKey = plain.WEBHOOK_JSON_KEY as keyof typeof WEBHOOK_KINDS | undefined;
  if (webhookKey) {
    legacy.push(...legacyTarget("WEBHOOK_URL", WEBHOOK_KINDS[webhookKey], value, problems));
  }
  legacy.push(...legacyTarget("APPRISE_URL", "apprise", value, problems));

  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.join("\n")}`);
  }
  const notes: string[] = [];
  let targets = parsed.targets;
  // FLEETHEAL_NOTIFY_URLS counts as set when it names a target (its problems were thrown above).
  if (targets.length === 0) {
    targets = legacy.map(({ kind, url }, i) => new NotifyTarget(i + 1, kind, url));
  } else {
    // Both at once is most often a migration half done, with the autoheal webhook already
    // copied into FLEETHEAL_NOTIFY_URLS: adding it again would notify it twice.
    for (const { name, kind } of legacy) {
      notes.push(
        `${name} is ignored: ${NOTIFY_URLS_ENV} is set and takes precedence; list the URL there as ${kind}+<url> if it should still be notified`,
      );
    }
  }
  if (targets.length === 0) return undefined;
  return {
    targets,
    events: [
      ...new Set(
        (plain.FLEETHEAL_NOTIFY_EVENTS as RemediationPhase[] | undefined) ?? DEFAULT_NOTIFY_EVENTS,
      ),
    ],
    timeoutMs: plain.FLEETHEAL_NOTIFY_TIMEOUT_MS as number,
    maxAgeMs: plain.FLEETHEAL_NOTIFY_MAX_AGE_MS as number,
    notes,
  };
}

/** A target given by one of the autoheal container's variables. */
interface LegacyTarget {
  name: string;
  kind: TargetKind;
  url: URL;
}

/**
 * One autoheal webhook variable as a target: none when it is not set, or when it is invalid
 * (then a problem names the variable, never the URL, which is a credential). Blanks around it
 * are dropped: autoheal passes the value to curl unquoted, so they never were part of the URL.
 */
function legacyTarget(
  name: string,
  kind: TargetKind,
  read: (name: string) => string | undefined,
  problems: string[],
): LegacyTarget[] {
  const text = read(name)?.trim();
  if (!text) return [];
  if (!HttpUrl.safeParse(text).success) {
    problems.push(`  ${name}: not an http:// or https:// URL`);
    return [];
  }
  const url = new URL(text);
  if (kind === "apprise" && (url.pathname === "/" || url.pathname === "")) {
    problems.push(
      `  ${name}: ${redactUrl(url)} needs the path of the Apprise API's notify endpoint, as in http://apprise:8000/notify/<key>`,
    );
    return [];
  }
  return [{ name, kind, url }];
}
