import type { KV } from "@nats-io/kv";
import type { Logger } from "../common/logger.js";
import { type HealPolicy, POLICY_KEY } from "../contracts/index.js";
import {
  initialPolicyState,
  nextPolicyState,
  type PolicyLog,
  type PolicyState,
  type PolicyTransition,
} from "./policy-state.js";

/** The fleet policy as currently stored, kept up to date by a KV watch. */
export interface PolicySource {
  /** The policy in force. */
  current(): HealPolicy;
  /** The policy in force and where it comes from; a new object after every change. */
  state(): PolicyState;
  stop(): Promise<void>;
}

/**
 * Watches the policy key and decodes it strictly (see policy-state.ts for the rules): an
 * invalid stored policy is logged as an error and the last valid one stays in force; with no
 * valid one known at start, healing is paused. The handlers and the gateway both use this, so
 * the gateway reports what the handlers hold.
 */
export async function watchPolicy(config: KV, log: Logger): Promise<PolicySource> {
  const take = (transition: PolicyTransition): PolicyState => {
    if (transition.log) write(log, transition.log);
    return transition.state;
  };
  // Read once before returning, so that the stored policy is in force from the first message.
  const stored = await config.get(POLICY_KEY);
  let state = take(initialPolicyState(stored ?? undefined));
  const watch = await config.watch({ key: POLICY_KEY });
  const loop = (async () => {
    for await (const entry of watch) state = take(nextPolicyState(state, entry));
  })();
  return {
    current: () => state.policy,
    state: () => state,
    async stop() {
      watch.stop();
      await loop;
    },
  };
}

function write(log: Logger, line: PolicyLog): void {
  if (line.level === "error") log.error(line.fields, line.msg);
  else log.info(line.fields, line.msg);
}
