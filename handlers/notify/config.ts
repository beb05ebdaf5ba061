import { z } from "zod";
import { intFromEnv } from "../../common/config.js";
import { ConfigError } from "../../common/errors.js";
import { RemediationPhase } from "../../contracts/index.js";
import { NOTIFY_URLS_ENV, type NotifyTarget, parseTargets } from "./targets.js";

/** The phases notified when FLEETHEAL_NOTIFY_EVENTS is not set: outcomes, not steps. */
export const DEFAULT_NOTIFY_EVENTS: readonly RemediationPhase[] = [
  "restarted",
  "failed",
  "quarantined",
  "released",
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

/** The non-secret variables, validated like every other variable. */
const PLAIN_VARIABLES = {
  FLEETHEAL_NOTIFY_EVENTS: Events.optional(),
  FLEETHEAL_NOTIFY_TIMEOUT_MS: intFromEnv({ min: 100, max: 60_000, default: 5_000 }),
  FLEETHEAL_NOTIFY_MAX_AGE_MS: intFromEnv({ min: 1_000, max: 604_800_000, default: 3_600_000 }),
} as const;

/**
 * Reads the notify settings. Returns undefined when FLEETHEAL_NOTIFY_URLS is not set (the notify
 * handler is not bound then); the other variables are validated either way. Every problem is
 * reported at once; a bad target is named by its position and redacted form, never its URL,
 * because webhook URLs are credentials.
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
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.join("\n")}`);
  }
  if (parsed.targets.length === 0) return undefined;
  return {
    targets: parsed.targets,
    events: [
      ...new Set(
        (plain.FLEETHEAL_NOTIFY_EVENTS as RemediationPhase[] | undefined) ?? DEFAULT_NOTIFY_EVENTS,
      ),
    ],
    timeoutMs: plain.FLEETHEAL_NOTIFY_TIMEOUT_MS as number,
    maxAgeMs: plain.FLEETHEAL_NOTIFY_MAX_AGE_MS as number,
  };
}
