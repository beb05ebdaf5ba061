import type { KV } from "@nats-io/kv";
import type { Logger } from "../../common/logger.js";
import { isWrongRevision } from "../../common/nats-errors.js";
import {
  DEFAULT_HEAL_POLICY,
  decode,
  encode,
  HealPolicy,
  POLICY_KEY,
} from "../../contracts/index.js";
import { ApiError } from "../http/api-errors.js";
import type { PolicyDocument } from "../http/api-schemas.js";

/** Compare-and-set attempts of a read-modify-write before reporting a conflict. */
const MAX_CAS_ATTEMPTS = 5;

/** What a read-modify-write did: the policy now stored, and whether this call changed it. */
export interface PolicyChange {
  doc: PolicyDocument;
  changed: boolean;
}

/**
 * The fleet policy in KV `fleetheal_config` (key `policy`), for the gateway's writers: a whole
 * replacement (`PUT /policy`) and the read-modify-writes of one part (pause, the per-container
 * healing switch), each a compare-and-set retried when another writer got there first, so that
 * concurrent changes to different parts are all kept. Failures are `ApiError`s or NATS errors
 * (see nats-unavailable.ts).
 */
export class NatsPolicyStore {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** The stored policy, or the defaults at revision 0 when none is stored. */
  async get(): Promise<PolicyDocument> {
    return (await this.read()) ?? { policy: DEFAULT_HEAL_POLICY, revision: 0 };
  }

  /**
   * Stores a whole policy. With `expectedRevision` it is a compare-and-set (0 = create), and a
   * lost race is a 412 naming the current revision.
   */
  async put(policy: HealPolicy, expectedRevision: number | undefined): Promise<PolicyDocument> {
    const value = encode(policy);
    try {
      let revision: number;
      if (expectedRevision === undefined) revision = await this.kv.put(POLICY_KEY, value);
      else if (expectedRevision === 0) revision = await this.kv.create(POLICY_KEY, value);
      else revision = await this.kv.update(POLICY_KEY, value, expectedRevision);
      this.log.info({ revision }, "fleet policy stored");
      return { policy, revision };
    } catch (error) {
      if (expectedRevision === undefined || !isWrongRevision(error)) throw error;
      const current = await this.kv.get(POLICY_KEY);
      const currentRevision = current?.operation === "PUT" ? current.revision : 0;
      throw new ApiError(
        "FLEETHEAL_ERR_PRECONDITION_FAILED",
        expectedRevision === 0
          ? "a fleet policy is already stored"
          : `the fleet policy is no longer at revision ${expectedRevision}`,
        { currentRevision },
        { cause: error },
      );
    }
  }

  /**
   * Reads the policy (the defaults when none is stored), applies `change` and stores the result
   * with a compare-and-set, again from a fresh read when another writer got there first. When
   * `change` returns undefined the policy already says what was asked: nothing is written.
   */
  async modify(change: (policy: HealPolicy) => HealPolicy | undefined): Promise<PolicyChange> {
    for (let attempt = 1; ; attempt++) {
      const stored = await this.read();
      const current = stored ?? { policy: DEFAULT_HEAL_POLICY, revision: 0 };
      const policy = change(current.policy);
      if (policy === undefined) return { doc: current, changed: false };
      try {
        const revision = stored
          ? await this.kv.update(POLICY_KEY, encode(policy), stored.revision)
          : await this.kv.create(POLICY_KEY, encode(policy));
        return { doc: { policy, revision }, changed: true };
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
        if (attempt >= MAX_CAS_ATTEMPTS) {
          throw new ApiError(
            "FLEETHEAL_ERR_CONFLICT",
            "the fleet policy kept changing; try again",
            undefined,
            { cause: error },
          );
        }
      }
    }
  }

  /**
   * The stored policy, or undefined when none is stored. An invalid one is an error rather than
   * the defaults: handlers reject it and keep the last valid policy they saw (or stay paused if
   * they started since), which differs between replicas, so any answer but "replace it" would
   * be a guess. /health reports it meanwhile.
   */
  private async read(): Promise<PolicyDocument | undefined> {
    const entry = await this.kv.get(POLICY_KEY);
    if (entry?.operation !== "PUT") return undefined;
    const decoded = decode(HealPolicy, entry.value);
    if (!decoded.ok) {
      throw new ApiError(
        "FLEETHEAL_ERR_CONFLICT",
        "the stored fleet policy is invalid; handlers reject it and keep their last valid policy, or stay paused when they started without one. Replace it with PUT /policy",
        {
          currentRevision: entry.revision,
          reason: decoded.error.message,
          issues: decoded.error.issues,
        },
      );
    }
    return { policy: decoded.value, revision: entry.revision };
  }
}
