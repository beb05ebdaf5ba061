import { type Labels, stopTimeoutFromLabels } from "../contracts/index.js";

/** Docker's own default, used when the container has no stop-timeout label. */
const DEFAULT_STOP_TIMEOUT_SECONDS = 10;
/** Time to start the container again and reply, on top of stopping it. */
const START_AND_REPLY_SECONDS = 30;

/**
 * How long a handler waits for the agent to restart a container with these labels: up to its
 * stop timeout plus the time to start it again. Waiting less would report a restart that is
 * merely slow as failed.
 */
export function restartDeadlineMs(labels: Labels): number {
  const stopSeconds = stopTimeoutFromLabels(labels) ?? DEFAULT_STOP_TIMEOUT_SECONDS;
  return (stopSeconds + START_AND_REPLY_SECONDS) * 1000;
}
