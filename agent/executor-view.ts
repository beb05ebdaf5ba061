import type { CommandExecutorOptions } from "./command-executor.js";
import type { ContainerDetails } from "./docker-engine.js";
import { type HostState, judgedHealth } from "./host-state.js";
import type { ProbeView } from "./probes/prober.js";
import type { RefreshCoalescer } from "./refresh-coalescer.js";

/** What the command executor's view of a container is made from. */
export interface ExecutorViewParts {
  /** Whether Docker's event stream is live: every event from now on reaches the state. */
  live(): boolean;
  refresher: Pick<RefreshCoalescer, "pending" | "verified">;
  state: Pick<HostState, "get">;
  /** The label probe's view of a container, for one without a Docker healthcheck. */
  probe(containerId: string): ProbeView | undefined;
}

/**
 * The executor's callbacks: the container as the agent knows it, so that a command can skip its
 * own inspect, and the container's health as the agent judges it.
 */
export function executorView(
  parts: ExecutorViewParts,
): Required<Pick<CommandExecutorOptions, "currentView" | "healthOf">> {
  return {
    /**
     * The container when what the agent knows is as current as an inspect: Docker's event
     * stream is live (every event is followed by an inspect of its container, and one in
     * progress is waited for), and the last inspect of it worked. Undefined otherwise.
     */
    currentView: async (id) => {
      if (!parts.live()) return undefined;
      await parts.refresher.pending(id);
      if (!parts.live() || !parts.refresher.verified(id)) return undefined;
      return parts.state.get(id);
    },
    /** Docker's health, or the label probe's for a container without a healthcheck. */
    healthOf: (details: ContainerDetails) => judgedHealth(details, parts.probe(details.id)).health,
  };
}
