import type { KV } from "@nats-io/kv";
import type { Logger } from "../../common/logger.js";
import { DEFAULT_HEAL_POLICY, decode, HealPolicy, POLICY_KEY } from "../../contracts/index.js";

/** The fleet policy as currently stored, kept up to date by a KV watch. */
export interface PolicySource {
  current(): HealPolicy;
  stop(): Promise<void>;
}

/**
 * Watches the policy key. A stored policy that does not validate is logged and ignored: the last
 * good one (or the defaults) stays in force, so a typo in the policy never stops healing.
 */
export async function watchPolicy(config: KV, log: Logger): Promise<PolicySource> {
  let policy = DEFAULT_HEAL_POLICY;
  let revision = 0;
  // Read once before returning, so that the stored policy is in force from the first message.
  const stored = await config.get(POLICY_KEY);
  if (stored?.operation === "PUT") {
    const decoded = decode(HealPolicy, stored.value);
    if (decoded.ok) {
      policy = decoded.value;
      revision = stored.revision;
      log.info({ revision }, "fleet policy loaded");
    } else {
      log.error(
        { err: decoded.error.message },
        "stored fleet policy is invalid; using the defaults",
      );
    }
  }
  const watch = await config.watch({ key: POLICY_KEY });
  const loop = (async () => {
    for await (const entry of watch) {
      if (entry.revision <= revision) continue;
      if (entry.operation !== "PUT") {
        policy = DEFAULT_HEAL_POLICY;
        log.info("fleet policy removed; using the defaults");
        continue;
      }
      const decoded = decode(HealPolicy, entry.value);
      if (decoded.ok) {
        policy = decoded.value;
        log.info({ revision: entry.revision }, "fleet policy loaded");
      } else {
        log.error(
          { revision: entry.revision, err: decoded.error.message },
          "stored fleet policy is invalid; keeping the previous one",
        );
      }
    }
  })();
  return {
    current: () => policy,
    async stop() {
      watch.stop();
      await loop;
    },
  };
}
