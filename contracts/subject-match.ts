import type { ContainerEvent } from "./container-event.js";
import type { RemediationRecord } from "./remediation.js";
import { parseEventSubject, parseRemediationSubject } from "./subjects.js";

/*
 * A message is valid only on its own subject. NATS permissions are granted by subject (an agent
 * may publish only under its own host), so a consumer that trusted the payload alone would let
 * one host speak for another. Consumers reject a message whose subject and payload disagree.
 */

/**
 * Why `event` may not be published on `subject`, or undefined when the subject's host,
 * container and action are the event's own.
 */
export function eventSubjectMismatch(subject: string, event: ContainerEvent): string | undefined {
  const parts = parseEventSubject(subject);
  if (!parts) return `${subject} is not a container event subject`;
  if (
    parts.host !== event.host ||
    parts.containerId !== event.container.id ||
    parts.action !== event.action
  ) {
    return `subject ${subject} does not match the event (host ${event.host}, container ${event.container.id}, action ${event.action})`;
  }
  return undefined;
}

/** Why `record` may not be published on `subject`, or undefined when it matches. */
export function remediationSubjectMismatch(
  subject: string,
  record: RemediationRecord,
): string | undefined {
  const parts = parseRemediationSubject(subject);
  if (!parts) return `${subject} is not a remediation subject`;
  if (
    parts.host !== record.host ||
    parts.containerId !== record.containerId ||
    parts.phase !== record.phase
  ) {
    return `subject ${subject} does not match the record (host ${record.host}, container ${record.containerId}, phase ${record.phase})`;
  }
  return undefined;
}
