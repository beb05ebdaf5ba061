import { createHash } from "node:crypto";
import { remediationRecord } from "../../common/remediation-record.js";
import {
  DisabledContainer,
  type HealPolicy,
  type RemediationRecord,
} from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { HealingSwitchResult, PolicyDocument } from "../http/api-schemas.js";
import type { ManualHealingSwitch } from "./ports.js";

/*
 * The run-time healing switch of one container: an entry of the policy's `disabled` list, keyed
 * by host and container name so that it outlives the container (a recreate makes a new id under
 * the same name). The decisions here are pure; NatsFleetControl stores and records them.
 */

/** The policy's `disabled` list holds at most this many entries (contracts/heal-policy.ts). */
const MAX_DISABLED = 10_000;

/**
 * The policy with the switch applied, or undefined when it already says so (switching off what
 * is off, or on what is on, writes nothing: the first `since`, `by` and `reason` stay).
 */
export function switchedPolicy(
  policy: HealPolicy,
  request: ManualHealingSwitch,
  at: Date,
): HealPolicy | undefined {
  const { host, name } = request;
  const others = policy.disabled.filter((d) => d.host !== host || d.name !== name);
  const isOff = others.length !== policy.disabled.length;
  if (request.enabled) return isOff ? { ...policy, disabled: others } : undefined;
  if (isOff) return undefined;
  if (policy.disabled.length >= MAX_DISABLED) {
    throw new ApiError(
      "FLEETHEAL_ERR_CONFLICT",
      `healing is already switched off for ${MAX_DISABLED} containers, the most the policy holds`,
    );
  }
  const entry = DisabledContainer.safeParse({
    host,
    name,
    since: at.toISOString(),
    by: request.actor.name.slice(0, 128),
    ...(request.reason ? { reason: request.reason.slice(0, 512) } : {}),
  });
  if (!entry.success) {
    throw new ApiError(
      "FLEETHEAL_ERR_BAD_REQUEST",
      `healing cannot be switched off for ${name} on ${host}: ${entry.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return { ...policy, disabled: [...policy.disabled, entry.data] };
}

/**
 * The switch's state in a stored policy, as the API answers it. Switching on a name that was
 * not switched off and that no container has is a 404: it names nothing.
 */
export function switchState(
  request: ManualHealingSwitch,
  doc: PolicyDocument,
  changed: boolean,
): HealingSwitchResult {
  const { host, name, container } = request;
  if (!changed && request.enabled && !container) {
    throw new ApiError(
      "FLEETHEAL_ERR_NOT_FOUND",
      `no container ${name} on ${host}, and healing is not switched off for that name`,
    );
  }
  const switchedOff = doc.policy.disabled.find((d) => d.host === host && d.name === name);
  return {
    host,
    name,
    ...(container ? { containerId: container.id } : {}),
    enabled: switchedOff === undefined,
    changed,
    revision: doc.revision,
    ...(switchedOff ? { switchedOff } : {}),
  };
}

/**
 * The audit record of a change (phase `disabled` or `enabled`), on the `act` subject of the
 * container that has the name now. A name that no container has any more can still be switched
 * back on; its record then carries a stand-in id, the first 64 hex digits of
 * sha256(`<host>/<name>`), the same for every such record of the name. The record's id is made
 * from the policy revision the change wrote, so a repeat of the same publish is deduplicated.
 */
export function switchRecord(
  request: ManualHealingSwitch,
  revision: number,
  at: Date,
): RemediationRecord {
  const { host, name, container, actor, enabled } = request;
  const phase = enabled ? "enabled" : "disabled";
  const key = nameDigest(host, name);
  const remediationId = `healing-switch:${host}:${key.slice(0, 24)}:${revision}`;
  const by = `${actor.name} from ${actor.address}`;
  const why = request.reason ? `: ${request.reason}` : "";
  return remediationRecord({
    id: `${remediationId}:${phase}`,
    remediationId,
    host,
    containerId: container?.id ?? key,
    containerName: name,
    phase,
    code: "by-hand",
    message: enabled
      ? `healing switched back on by ${by}${why}`
      : `healing switched off by ${by}${why}; fleetheal leaves ${name} alone until it is switched on`,
    actor: actor.name,
    at,
  });
}

function nameDigest(host: string, name: string): string {
  return createHash("sha256").update(`${host}/${name}`).digest("hex");
}
