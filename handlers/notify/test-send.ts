import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { pino } from "pino";
import { ConfigError, describeError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { REMEDIATION_TYPE, RemediationRecord, toToken } from "../../contracts/index.js";
import { loadNotifyConfig, type NotifyConfig } from "./config.js";
import { type Notifier, NotifyError, WebhookNotifier } from "./notifier.js";
import { buildPayload } from "./payloads.js";
import { NOTIFY_URLS_ENV } from "./targets.js";

/** The record `fleetheal notify-test` sends: a `restarted` that restarted nothing. */
export function sampleRecord(now: Date, host: string): RemediationRecord {
  const id = `notify-test-${randomUUID()}`;
  return RemediationRecord.parse({
    type: REMEDIATION_TYPE,
    v: 1,
    id,
    remediationId: id,
    host,
    containerId: "0123456789ab",
    containerName: "fleetheal-notify-test",
    phase: "restarted",
    code: "notify-test",
    message: "This is a test notification from `fleetheal notify-test`; no container was touched.",
    actor: "notify-test",
    at: now.toISOString(),
    dryRun: false,
  });
}

export interface TestSendOptions {
  notifier?: Notifier;
  log?: Logger;
  /** Receives one line per target. */
  write: (line: string) => void;
  now?: Date;
  host?: string;
}

/**
 * Sends a sample record to every configured target, whatever FLEETHEAL_NOTIFY_EVENTS says, and
 * writes one line per target (`OK` or `FAILED`, redacted). Resolves true if every target took it.
 */
export async function sendTestNotifications(
  config: NotifyConfig,
  options: TestSendOptions,
): Promise<boolean> {
  const notifier = options.notifier ?? new WebhookNotifier({ timeoutMs: config.timeoutMs });
  const log = options.log ?? pino({ level: "silent" });
  const record = sampleRecord(options.now ?? new Date(), options.host ?? toToken(hostname()));
  const results = await Promise.all(
    config.targets.map(async (target) => {
      const send = {
        key: `${record.id}:${target.index}`,
        target,
        payload: buildPayload(target.kind, record),
      };
      try {
        const result = await notifier.deliver(send, log);
        if (result.outcome === "rejected") {
          return `FAILED  ${target.label}: rejected with HTTP ${result.status} (not retried)`;
        }
        if (result.outcome === "duplicate") return `OK      ${target.label}`;
        const tries = result.attempts === 1 ? "1 attempt" : `${result.attempts} attempts`;
        return `OK      ${target.label} (HTTP ${result.status}, ${tries}, ${result.durationMs} ms)`;
      } catch (error) {
        const reason =
          error instanceof NotifyError
            ? `failed after ${error.attempts} attempts: ${error.reason}`
            : describeError(error);
        return `FAILED  ${target.label}: ${reason}`;
      }
    }),
  );
  for (const line of results) options.write(line);
  return results.every((line) => line.startsWith("OK"));
}

/**
 * `fleetheal notify-test`: exit code 0 when every target took the sample, 1 when one did not,
 * 2 when the configuration is invalid or names no target.
 */
export async function notifyTestCommand(
  env: NodeJS.ProcessEnv,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  let config: NotifyConfig | undefined;
  try {
    config = loadNotifyConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    err(`fleetheal: ${error.message}\n`);
    return 2;
  }
  if (!config) {
    err(
      `fleetheal notify-test: neither ${NOTIFY_URLS_ENV} nor autoheal's WEBHOOK_URL or APPRISE_URL is set; there is nothing to test\n`,
    );
    return 2;
  }
  const host = toToken(env.FLEETHEAL_HOST_ID || hostname());
  out(`Sending a sample notification to ${config.targets.length} target(s)…\n`);
  const ok = await sendTestNotifications(config, { host, write: (line) => out(`${line}\n`) });
  return ok ? 0 : 1;
}
