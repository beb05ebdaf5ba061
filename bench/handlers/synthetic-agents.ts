// The synthetic agents of the handler benchmark: every host of the fleet answers its restart
// commands with a valid reply, as agents do, and counts what the caps are about.

import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  COMMAND_REPLY_TYPE,
  type CommandReply,
  commandSubject,
  containerKey,
  encode,
  type RestartCommand,
} from "../../contracts/index.js";

export interface Start {
  host: string;
  key: string;
  commandId: string;
  at: number;
}

/**
 * Serves every host's restart command subject like the agent does: each command id
 * is executed once (a repeat gets the first reply), and a restart takes `holdMs`. Counts the
 * restarts in progress per host and fleet-wide, and when each one started.
 */
export class SyntheticAgents {
  holdMs = 0;
  readonly starts: Start[] = [];
  readonly byContainer = new Map<string, Set<string>>();
  duplicates = 0;
  maxFleet = 0;
  maxHost = 0;
  private fleetNow = 0;
  private readonly hostNow = new Map<string, number>();
  private readonly replies = new Map<string, Promise<Uint8Array>>();
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    hosts: string[],
  ) {
    for (const host of hosts) {
      this.subs.push(
        nc.subscribe(commandSubject(host, "restart"), {
          callback: (error, msg) => {
            if (!error) this.onCommand(host, msg);
          },
        }),
      );
    }
  }

  reset(holdMs: number): void {
    this.holdMs = holdMs;
    this.starts.length = 0;
    this.byContainer.clear();
    this.replies.clear();
    this.duplicates = 0;
    this.maxFleet = 0;
    this.maxHost = 0;
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  private onCommand(host: string, msg: Msg): void {
    const command = JSON.parse(new TextDecoder().decode(msg.data)) as Pick<
      RestartCommand,
      "commandId" | "containerId" | "host"
    >;
    const earlier = this.replies.get(command.commandId);
    if (earlier) {
      this.duplicates++;
      void earlier.then((data) => msg.respond(data));
      return;
    }
    const key = containerKey(host, command.containerId);
    const at = Date.now();
    this.starts.push({ host, key, commandId: command.commandId, at });
    const ids = this.byContainer.get(key) ?? new Set<string>();
    ids.add(command.commandId);
    this.byContainer.set(key, ids);
    this.fleetNow++;
    const onHost = (this.hostNow.get(host) ?? 0) + 1;
    this.hostNow.set(host, onHost);
    this.maxFleet = Math.max(this.maxFleet, this.fleetNow);
    this.maxHost = Math.max(this.maxHost, onHost);
    const finish = (): Uint8Array => {
      this.fleetNow--;
      this.hostNow.set(host, (this.hostNow.get(host) ?? 1) - 1);
      const reply: CommandReply = {
        type: COMMAND_REPLY_TYPE,
        v: 1,
        verb: "restart",
        commandId: command.commandId,
        host,
        containerId: command.containerId,
        outcome: "restarted",
        code: "restarted",
        message: "restarted (stop timeout 10s)",
        duplicate: false,
        startedAt: new Date(at).toISOString(),
        durationMs: Date.now() - at,
      };
      const data = encode(reply);
      msg.respond(data);
      return encode({ ...reply, duplicate: true });
    };
    if (this.holdMs === 0) {
      this.replies.set(command.commandId, Promise.resolve(finish()));
    } else {
      this.replies.set(
        command.commandId,
        new Promise((resolve) => setTimeout(() => resolve(finish()), this.holdMs)),
      );
    }
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

/** The most restarts started within any `windowMs`, fleet-wide and on the busiest host. */
export function maxStartsWithin(starts: Start[], windowMs: number) {
  const most = (times: number[]) => {
    const sorted = [...times].sort((a, b) => a - b);
    let best = 0;
    let lo = 0;
    for (let hi = 0; hi < sorted.length; hi++) {
      while ((sorted[hi] as number) - (sorted[lo] as number) >= windowMs) lo++;
      best = Math.max(best, hi - lo + 1);
    }
    return best;
  };
  const perHost = new Map<string, number[]>();
  for (const s of starts) {
    const list = perHost.get(s.host) ?? [];
    list.push(s.at);
    perHost.set(s.host, list);
  }
  return {
    fleet: most(starts.map((s) => s.at)),
    host: Math.max(0, ...[...perHost.values()].map(most)),
  };
}

/**
 * The restarts the agents saw, timed by when their rate slots were taken (the server's clock):
 * the most within any minute, fleet-wide and on the busiest host, and how long after its
 * fleet slot each restart reached its agent.
 */
export function slotWindows(slots: { key: string; holder: string; at: number }[], starts: Start[]) {
  const fleetSlot = new Map<string, number>();
  const hostSlot = new Map<string, number>();
  for (const s of slots) {
    if (s.key.startsWith("fleet.")) fleetSlot.set(s.holder, s.at);
    else hostSlot.set(s.holder, s.at);
  }
  const timed: Start[] = [];
  const lagMs: number[] = [];
  let withoutSlot = 0;
  for (const s of starts) {
    const at = fleetSlot.get(s.commandId);
    if (at === undefined || !hostSlot.has(s.commandId)) {
      withoutSlot++;
      continue;
    }
    timed.push({ ...s, at });
    lagMs.push(s.at - at);
  }
  const most = maxStartsWithin(timed, 60_000);
  lagMs.sort((a, b) => a - b);
  return {
    fleet: most.fleet,
    host: most.host,
    startsWithoutSlot: withoutSlot,
    slotToAgentMs: {
      p50: lagMs[Math.floor(lagMs.length / 2)] ?? 0,
      max: lagMs.at(-1) ?? 0,
    },
  };
}
