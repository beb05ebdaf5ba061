// What the benchmark takes from the handlers' own code, in one place: the ops floor follows the
// handlers' concurrency and consumers, so that it makes their operations as they make them.

import { dependentsHandler } from "../../handlers/dependents.js";
import { healHandler } from "../../handlers/heal.js";
import { durableName } from "../../handlers/runtime/durable-consumer.js";

const heal = healHandler({ maxEventAgeMs: 0, retryDelayMs: 0 });
const dependents = dependentsHandler({ retryDelayMs: 0 });

/** One handler as the runtime binds it: its durable consumer and how many messages at once. */
export interface BoundHandler {
  /** The handler's name, as its records' `actor` says (`handler:<name>`). */
  name: string;
  durable: string;
  concurrency: number;
}

export const HEAL: BoundHandler = {
  name: heal.name,
  durable: durableName(heal.name),
  concurrency: heal.concurrency,
};

export const DEPENDENTS: BoundHandler = {
  name: dependents.name,
  durable: durableName(dependents.name),
  concurrency: dependents.concurrency,
};

/** How long one pull of the runtime's consumer loop waits for messages. */
export const PULL_EXPIRES_MS = 5_000;
