// The fleetheal stacks of the heal benchmark, side by side on one Docker engine: each its own
// nats-server, an agent with its own host id and opt-in label (so each heals only its own
// containers), and its handlers.

import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  CONFIG_BUCKET,
  EVENTS_STREAM,
  encode,
  type HealPolicy,
  POLICY_KEY,
} from "../../contracts/index.js";
import type { DockerEngine } from "../../test/support/dockerd.js";
import { startNatsServer } from "../../test/support/nats-server.js";
import { waitFor } from "../../test/support/wait.js";
import type { Teardown } from "../runner/async.js";
import { type Build, startBuildRole } from "../runner/builds.js";
import { type NatsSightings, watchNats } from "./incidents.js";

/**
 * fleetheal with signed commands (as deployed), with signing off, and a baseline build with
 * signed commands (when two builds are compared).
 */
export type FleetPath = "signed" | "unsigned" | "baseline";

export interface StackSettings {
  stopTimeoutSeconds: number;
  handlers: number;
  logLevel: string;
}

/** Each path's host id and opt-in label, and whether its commands are signed. */
export const STACKS: Record<FleetPath, { host: string; label: string; signed: boolean }> = {
  signed: { host: "bench-signed", label: "autoheal", signed: true },
  unsigned: { host: "bench-unsigned", label: "bench.unsigned", signed: false },
  baseline: { host: "bench-baseline", label: "bench.baseline", signed: true },
};

/** One fleetheal: its own nats-server, an agent on the shared engine, and its handlers. */
export interface Stack {
  nc: NatsConnection;
  seen: NatsSightings;
  /** Stores the fleet policy; resolves once it can be read back. */
  storePolicy(policy: HealPolicy): Promise<void>;
  eventsStored(): Promise<number>;
}

/**
 * Signing on is what startRole does by default (the test process's key). Off: the handlers
 * have no key and the agent accepts unsigned commands. A handler without a key warns at start,
 * and the commands seen on NATS are checked at the end, so the two cannot be swapped silently.
 */
export async function startStack(
  which: FleetPath,
  build: Build,
  engine: DockerEngine,
  settings: StackSettings,
  teardown: Teardown,
): Promise<Stack> {
  const nats = await startNatsServer();
  teardown.add(() => nats[Symbol.asyncDispose]());
  const { host, label, signed } = STACKS[which];
  const off = !signed;
  const common = { FLEETHEAL_NATS_URL: nats.url, FLEETHEAL_LOG_LEVEL: settings.logLevel };
  const agent = await startBuildRole(build, "agent", `bench-agent-${which}`, {
    ...common,
    FLEETHEAL_HOST_ID: host,
    FLEETHEAL_LABEL: label,
    DOCKER_HOST: engine.dockerHost,
    FLEETHEAL_STOP_TIMEOUT: String(settings.stopTimeoutSeconds),
    ...(off ? { FLEETHEAL_COMMAND_KEYS: "", FLEETHEAL_INSECURE_UNSIGNED_COMMANDS: "true" } : {}),
  });
  teardown.add(() => agent[Symbol.asyncDispose]());
  for (let i = 0; i < settings.handlers; i++) {
    const handler = await startBuildRole(build, "handler", `bench-handler-${which}-${i}`, {
      ...common,
      ...(off ? { FLEETHEAL_COMMAND_SIGNING_KEY_FILE: "" } : {}),
    });
    teardown.add(() => handler[Symbol.asyncDispose]());
    const unsignedWarning = handler.json.some((l) =>
      String(l.msg).startsWith("FLEETHEAL_COMMAND_SIGNING_KEY_FILE is not set"),
    );
    if (unsignedWarning !== off) {
      throw new Error(`bench-handler-${which}-${i} should ${off ? "not " : ""}sign commands`);
    }
  }
  const nc = await connect({ servers: nats.url, name: `bench-heal-${which}` });
  teardown.add(() => nc.close());
  const config = await new Kvm(nc).open(CONFIG_BUCKET);
  return {
    nc,
    seen: watchNats(nc, host),
    async storePolicy(policy) {
      await config.put(POLICY_KEY, encode(policy));
      await waitFor(async () => (await config.get(POLICY_KEY))?.value.length, {
        timeoutMs: 10_000,
        message: "policy not stored",
      });
    },
    eventsStored: async () =>
      (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.messages,
  };
}

/** Each stack sent what it was meant to: a run with signing off on both sides measures nothing. */
export function checkSigning(stacks: Partial<Record<FleetPath, Stack>>): void {
  const wrong = Object.entries(stacks).filter(([which, stack]) => {
    const { signed, unsigned } = (stack as Stack).seen;
    return STACKS[which as FleetPath].signed ? unsigned > 0 || signed === 0 : signed > 0;
  });
  if (wrong.length > 0) {
    const counts = Object.entries(stacks)
      .map(([which, s]) => `${which} path ${s?.seen.signed} signed/${s?.seen.unsigned} unsigned`)
      .join(", ");
    throw new Error(`commands on the wrong side: ${counts}`);
  }
}
