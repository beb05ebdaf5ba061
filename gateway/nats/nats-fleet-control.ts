import { createHash, randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  type CommandSigning,
  type RestartDraft,
  sendAgentCommand,
} from "../../common/agent-commands.js";
import { describeError } from "../../common/errors.js";
import type { FleetJetStream } from "../../common/jetstream-resources.js";
import type { Logger } from "../../common/logger.js";
import { isWrongRevision } from "../../common/nats-errors.js";
import { ReleaseNotRecordedError, releaseFromQuarantine } from "../../common/quarantine-release.js";
import { remediationRecord } from "../../common/remediation-record.js";
import {
  type HealPolicy,
  RESTART_COMMAND_TYPE,
  type RemediationPhase,
  type RemediationRecord,
} from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { HealingSwitchResult, PolicyDocument, RestartResult } from "../http/api-schemas.js";
import { switchedPolicy, switchRecord, switchState } from "./healing-switch.js";
import { NatsPolicyStore } from "./nats-policy-store.js";
import { unavailableOnNatsError } from "./nats-unavailable.js";
import type {
  FleetControl,
  ManualHealingSwitch,
  ManualRelease,
  ManualRestart,
  RestartCounts,
} from "./ports.js";

export interface NatsFleetControlOptions {
  nc: NatsConnection;
  fjs: FleetJetStream;
  /** How long to wait for an agent's reply; a longer stop timeout extends it. */
  commandTimeoutMs: number;
  /** How restart commands are signed, at send time. */
  commandSigning: CommandSigning;
  log: Logger;
  /** Counts the restarts sent, for /metrics. */
  restarts?: RestartCounts;
}

/** Docker's stop timeout plus the time to start again and reply. */
const RESTART_MARGIN_MS = 10_000;

/**
 * {@link FleetControl} on a real NATS connection: manual restarts are NATS requests to the
 * host's agent, audited as remediation records in the events stream; release, the policy and
 * the healing switch are compare-and-set writes to the ledger and config buckets.
 */
export class NatsFleetControl implements FleetControl {
  private readonly nc: NatsConnection;
  private readonly fjs: FleetJetStream;
  private readonly commandTimeoutMs: number;
  private readonly commandSigning: CommandSigning;
  private readonly log: Logger;
  private readonly policies: NatsPolicyStore;
  private readonly restarts: RestartCounts | undefined;

  constructor(options: NatsFleetControlOptions) {
    this.nc = options.nc;
    this.fjs = options.fjs;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.commandSigning = options.commandSigning;
    this.log = options.log;
    this.policies = new NatsPolicyStore(options.fjs.config, options.log);
    this.restarts = options.restarts;
  }

  async restart(request: ManualRestart): Promise<RestartResult> {
    const { host, container, actor } = request;
    const commandId = manualCommandId(host, container.id, request.idempotencyKey);
    const remediationId = `manual:${commandId}`;
    const command: RestartDraft = {
      type: RESTART_COMMAND_TYPE,
      v: 1,
      commandId,
      host,
      containerId: container.id,
      reason: request.reason.slice(0, 512),
      requestedBy: actor.name.slice(0, 128),
      ...(request.stopTimeoutSeconds !== undefined
        ? { stopTimeoutSeconds: request.stopTimeoutSeconds }
        : {}),
    };
    const log = this.log.child({ host, containerId: container.id, commandId, actor: actor.name });
    const record = (phase: RemediationPhase, code: string, message: string): RemediationRecord =>
      remediationRecord({
        // One id per phase: a retried request with the same idempotency key publishes the same
        // ids, and the stream's dedup window drops the repeats.
        id: `${remediationId}:${phase}`,
        remediationId,
        host,
        containerId: container.id,
        containerName: container.name,
        phase,
        code,
        message,
        commandId,
        actor: actor.name,
        at: new Date(),
      });

    // Without the audit record there is no restart: a restart nobody can trace is worse than
    // an error the client can retry.
    try {
      await this.publish(
        record(
          "restarting",
          "by-hand",
          `restart by hand, asked by ${actor.name} from ${actor.address}: ${request.reason}`,
        ),
      );
    } catch (error) {
      log.warn({ err: describeError(error) }, "could not record a manual restart");
      throw new ApiError(
        "FLEETHEAL_ERR_UNAVAILABLE",
        "NATS JetStream is not available",
        undefined,
        {
          cause: error,
        },
      );
    }

    const timeout = Math.max(
      this.commandTimeoutMs,
      request.stopTimeoutSeconds !== undefined
        ? request.stopTimeoutSeconds * 1_000 + RESTART_MARGIN_MS
        : 0,
    );
    const failed = async (code: string, message: string, counted = true): Promise<void> => {
      if (counted) this.restarts?.restartFailed(code);
      await this.publish(record("failed", code, message)).catch((error: unknown) =>
        log.error({ err: describeError(error) }, "could not record a failed manual restart"),
      );
    };

    const result = await sendAgentCommand(this.nc, command, {
      signing: this.commandSigning,
      timeoutMs: timeout,
    });
    if (!result.ok) {
      const unreachable = `the agent of host ${host} is not reachable`;
      switch (result.code) {
        case "command-refused": {
          // The gateway's key or clock, not the client's request: the agent's reason is shown.
          const message = `the agent of host ${host} refused the command: ${result.message}`;
          log.warn({ refusal: result.message }, "the agent refused a manual restart");
          await failed("command-refused", message);
          throw new ApiError("FLEETHEAL_ERR_COMMAND_REFUSED", message, {
            refusal: result.message.split(":")[0],
          });
        }
        case "rejected":
          await failed(
            "rejected",
            `the agent of host ${host} rejected the command: ${result.message}`,
          );
          throw new ApiError("FLEETHEAL_ERR_BAD_REQUEST", result.message, {
            code: String(result.status),
          });
        case "bad-reply":
          // A 500 carries no details (docs/API.md): the reason goes to the log.
          log.error({ err: result.message }, "the agent's reply is invalid");
          await failed("bad-reply", `the agent's reply is invalid: ${result.message}`);
          throw new ApiError(
            "FLEETHEAL_ERR_INTERNAL",
            `the agent of host ${host} sent an invalid reply`,
          );
        case "no-responders":
          await failed("no-responders", unreachable);
          throw new ApiError("FLEETHEAL_ERR_UNAVAILABLE", unreachable, undefined, {
            cause: result.cause,
          });
        case "timeout":
          // The agent may still act on it; a retry with the same idempotency key is safe.
          await failed("timeout", `the agent of host ${host} did not answer within ${timeout} ms`);
          throw new ApiError(
            "FLEETHEAL_ERR_AGENT_TIMEOUT",
            `the agent of host ${host} did not answer within ${timeout} ms`,
            { commandId, timeoutMs: timeout },
            { cause: result.cause },
          );
        case "error":
          await failed("error", `the command could not be sent: ${result.message}`);
          throw new ApiError(
            "FLEETHEAL_ERR_UNAVAILABLE",
            `the command could not be sent to host ${host}: ${result.message}`,
            undefined,
            { cause: result.cause },
          );
      }
    }
    const { reply } = result;

    // A repeated command id: the agent answers with the outcome of its earlier run, counted then.
    const fresh = !reply.duplicate;
    if (reply.outcome === "restarted") {
      if (fresh) this.restarts?.restarted();
      await this.publish(
        record("restarted", "by-hand", `restarted by hand, asked by ${actor.name}`),
      ).catch((error: unknown) =>
        log.error({ err: describeError(error) }, "could not record a manual restart"),
      );
    } else {
      await failed(reply.code, reply.message, fresh);
    }
    log.info(
      { outcome: reply.outcome, code: reply.code, duplicate: reply.duplicate },
      "manual restart answered",
    );
    return {
      remediationId,
      commandId,
      outcome: reply.outcome,
      code: reply.code,
      message: reply.message,
      duplicate: reply.duplicate,
      durationMs: reply.durationMs,
    };
  }

  async release(request: ManualRelease): Promise<{ releasedAt: string }> {
    const { host, container, actor } = request;
    const log = this.log.child({ host, containerId: container.id, actor: actor.name });
    const result = await unavailableOnNatsError(log, "release the container", async () => {
      try {
        return await releaseFromQuarantine({
          ledger: this.fjs.ledger,
          records: this.fjs.records,
          host,
          container,
          actor: actor.name,
          code: "by-hand",
          message: `released from quarantine by hand, asked by ${actor.name} from ${actor.address}${
            request.reason ? `: ${request.reason}` : ""
          }`,
          now: new Date(),
        });
      } catch (error) {
        if (error instanceof ReleaseNotRecordedError) {
          // Released all the same; only the audit record is missing, and the log has it.
          log.error({ err: describeError(error) }, "released by hand, but not recorded");
          throw new ApiError(
            "FLEETHEAL_ERR_UNAVAILABLE",
            `${container.name} on ${host} is released, but the released record could not be stored`,
            undefined,
            { cause: error },
          );
        }
        if (isWrongRevision(error)) {
          throw new ApiError(
            "FLEETHEAL_ERR_CONFLICT",
            `the ledger entry of ${container.name} on ${host} kept changing; try again`,
            undefined,
            { cause: error },
          );
        }
        throw error;
      }
    });
    if (!result.released) {
      throw new ApiError(
        "FLEETHEAL_ERR_CONFLICT",
        `${container.name} on ${host} is not quarantined`,
      );
    }
    log.info("released by hand");
    return { releasedAt: result.releasedAt };
  }

  getPolicy(): Promise<PolicyDocument> {
    return unavailableOnNatsError(this.log, "read the policy", () => this.policies.get());
  }

  putPolicy(policy: HealPolicy, expectedRevision?: number): Promise<PolicyDocument> {
    return unavailableOnNatsError(this.log, "store the policy", () =>
      this.policies.put(policy, expectedRevision),
    );
  }

  setPaused(paused: boolean): Promise<PolicyDocument> {
    return unavailableOnNatsError(this.log, "store the policy", async () => {
      const { doc } = await this.policies.modify((policy) => ({ ...policy, paused }));
      this.log.info(
        { revision: doc.revision, paused },
        paused ? "healing paused" : "healing resumed",
      );
      return doc;
    });
  }

  async setHealing(request: ManualHealingSwitch): Promise<HealingSwitchResult> {
    const { host, name, enabled, actor } = request;
    const log = this.log.child({ host, name, actor: actor.name });
    const at = new Date();
    const { doc, changed } = await unavailableOnNatsError(log, "store the policy", () =>
      this.policies.modify((policy) => switchedPolicy(policy, request, at)),
    );
    const state = switchState(request, doc, changed);
    if (!changed) return state;
    log.info({ revision: doc.revision, enabled }, `healing switched ${enabled ? "on" : "off"}`);
    try {
      await this.publish(switchRecord(request, doc.revision, at));
    } catch (error) {
      // Switched all the same; only the audit record is missing, and the log has it.
      log.error({ err: describeError(error) }, "healing switched, but not recorded");
      throw new ApiError(
        "FLEETHEAL_ERR_UNAVAILABLE",
        `healing is switched ${enabled ? "on" : "off"} for ${name} on ${host}, but the ${
          enabled ? "enabled" : "disabled"
        } record could not be stored`,
        undefined,
        { cause: error },
      );
    }
    return state;
  }

  private async publish(record: RemediationRecord): Promise<void> {
    await this.fjs.records.publish(record);
  }
}

/**
 * `manual-<24 hex>`: a hash of the client's idempotency key, so the same key always names the
 * same command (and the agent runs it once), and a key of any length or alphabet fits the
 * command id's pattern. The container is hashed too: a key reused for another container must
 * not be answered with the first container's reply. Without a key every request is new.
 */
export function manualCommandId(
  host: string,
  containerId: string,
  idempotencyKey: string | undefined,
): string {
  const digest = createHash("sha256")
    .update(`${host}\n${containerId}\n${idempotencyKey ?? randomUUID()}`)
    .digest("hex");
  return `manual-${digest.slice(0, 24)}`;
}
