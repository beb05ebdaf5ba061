import { describe, expect, it } from "vitest";
import { DOCKER_HOST_SCHEMES, loadAgentConfig } from "../agent/config.js";
import { loadEnv } from "../common/config.js";
import { loadGatewayConfig } from "../gateway/config.js";
import { loadHandlerConfig } from "../handlers/config.js";
import { ENVIRONMENT, type EnvGroupName, type EnvVariable } from "./environment.js";
import { resolveTarget } from "./gateway-config.js";
import { UpEnv } from "./up.js";

/**
 * The configuration each group of variables sets, read from `env`: the roles' own loaders and
 * schemas, so that the help is checked against what fleetheal does, not against a copy.
 */
const LOADERS: Record<EnvGroupName, (env: NodeJS.ProcessEnv) => unknown> = {
  nats: (env) => [loadAgentConfig(env), loadHandlerConfig(env), loadGatewayConfig(env)],
  natsSecurity: (env) => loadAgentConfig(env),
  agent: (env) => loadAgentConfig(env),
  handler: (env) => loadHandlerConfig(env),
  // The notify settings are read only once there is a target.
  notify: (env) => loadHandlerConfig({ FLEETHEAL_NOTIFY_URLS: "json+http://127.0.0.1:1", ...env }),
  notifyTest: (env) => env.FLEETHEAL_HOST_ID,
  gateway: (env) => loadGatewayConfig(env),
  gatewayCommands: (env) => resolveTarget({}, env, { action: false, cwd: "/nonexistent" }),
  up: (env) => loadEnv(UpEnv, env),
};

/**
 * Left unset by the loaders, so that the library applies its own default, which the help names:
 * nats.js's inbox prefix, and dockerode's (and the docker CLI's) socket.
 */
const LIBRARY_DEFAULTS = new Set(["FLEETHEAL_NATS_INBOX_PREFIX", "DOCKER_HOST"]);

/**
 * The variables whose help states a value as their default (not "none" or a sentence), with
 * that value as it would be set: `./.fleetheal` is the relative path `.fleetheal`.
 */
const literalDefaults = Object.entries(ENVIRONMENT).flatMap(([group, { variables }]) =>
  variables.flatMap((v: EnvVariable) =>
    v.default !== undefined &&
    v.default !== "none" &&
    /^\S+$/.test(v.default) &&
    v.names.length === 1 &&
    !LIBRARY_DEFAULTS.has(v.names[0] as string)
      ? [[group as EnvGroupName, v.names[0] as string, v.default.replace(/^\.\//, "")] as const]
      : [],
  ),
);

describe("the environment the help lists", () => {
  it("states many defaults as values", () => {
    expect(literalDefaults.length).toBeGreaterThan(25);
  });

  it.each(literalDefaults)(
    "%s: %s's default in the help, %s, is what is used when unset",
    (group, name, value) => {
      const load = LOADERS[group];
      expect(load({ [name]: value })).toEqual(load({}));
    },
  );
});

describe("DOCKER_HOST in the help", () => {
  it("names every scheme the agent accepts", () => {
    const variables: readonly EnvVariable[] = ENVIRONMENT.agent.variables;
    const dockerHost = variables.find((v) => v.names.includes("DOCKER_HOST"));
    const named = [...(dockerHost?.description ?? "").matchAll(/\b([a-z]+):\/\//g)].map(
      (m) => m[1],
    );
    expect(named).toEqual([...DOCKER_HOST_SCHEMES]);
  });
});
