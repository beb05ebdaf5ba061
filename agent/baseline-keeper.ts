import { describeError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { HostSnapshot } from "../contracts/index.js";
import type { AgentBaseline } from "./agent-ports.js";

/**
 * Loads and saves the agent's baseline (agent-ports.ts, AgentBaseline) without ever failing the
 * agent: the agent heals without it, but its next run would start without a baseline, so a
 * failure is logged, and a failing save only once until a save works again.
 */
export class BaselineKeeper {
  private failing = false;

  constructor(
    private readonly baseline: AgentBaseline,
    private readonly log: Logger,
  ) {}

  /** The previous run's last snapshot; undefined when there is none or it cannot be read. */
  async load(): Promise<HostSnapshot | undefined> {
    try {
      return await this.baseline.load();
    } catch (error) {
      this.log.warn({ err: describeError(error) }, "ignoring an unreadable previous snapshot");
      return undefined;
    }
  }

  /** Saves what subscribers have just been told. */
  async save(snapshot: HostSnapshot): Promise<void> {
    try {
      await this.baseline.save(snapshot);
      if (this.failing) this.log.info("the snapshot is saved for the next run again");
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        this.log.warn(
          { err: describeError(error) },
          "could not save the snapshot for the next run; it will start without a baseline",
        );
      }
      this.failing = true;
    }
  }
}
