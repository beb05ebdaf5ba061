import { createLogger } from "../../common/logger.js";
import { defineCommand } from "../command.js";
import { ROLE_EXIT_CODES_HELP } from "../exit-codes.js";

// The roles. Each one's code, its configuration schema included, is imported only in `start`:
// this file is loaded for any of them, and for `fleetheal --help`.

/** `fleetheal up`: every role in one process, for one host. */
export const up = defineCommand({
  name: "up",
  summary:
    "All-in-one for one host: an embedded nats-server (unless FLEETHEAL_NATS_URL is set; it is plain loopback, so the NATS security variables need FLEETHEAL_NATS_URL), the agent, a handler and the gateway. Ctrl-C or SIGTERM stops everything.",
  env: ["nats", "natsSecurity", "agent", "handler", "notify", "gateway", "up"],
  exitCodes: ROLE_EXIT_CODES_HELP,
  start: async () => (await import("../up.js")).startAllInOne(),
});

/** `fleetheal agent`: one per host. Its heartbeat is what `fleetheal healthcheck` judges. */
export const agent = defineCommand({
  name: "agent",
  summary:
    "The per-host agent: forwards Docker events, keeps the host snapshot, runs label probes, executes commands for containers labelled <FLEETHEAL_LABEL>=true.",
  env: ["nats", "natsSecurity", "agent"],
  exitCodes: ROLE_EXIT_CODES_HELP,
  async start(_args, ctx) {
    const loaded = (await import("../../agent/config.js")).loadAgentConfig(ctx.env);
    const config = await (await import("../../agent/host-id.js")).withHostIdOfEngine(
      loaded,
      ctx.env,
    );
    const running = await (await import("../../agent/main.js")).runAgent(
      config,
      createLogger("agent"),
    );
    return (await import("../healthcheck.js")).keepHeartbeat("agent", running);
  },
});

/** `fleetheal handler`: one replica of the handlers; run as many as you like. */
export const handler = defineCommand({
  name: "handler",
  summary:
    "One handler replica (heal, auto-monitor, dependents, and notify when FLEETHEAL_NOTIFY_URLS is set). Run as many as you like. The heal policy (backoff, budget, quarantine, pause…) is in KV; see docs/POLICY.md.",
  env: ["nats", "natsSecurity", "handler", "notify"],
  exitCodes: ROLE_EXIT_CODES_HELP,
  async start(_args, ctx) {
    const config = (await import("../../handlers/config.js")).loadHandlerConfig(ctx.env);
    const running = await (await import("../../handlers/main.js")).runHandlers(
      config,
      createLogger("handler"),
    );
    return (await import("../healthcheck.js")).keepHeartbeat("handler", running);
  },
});

/** `fleetheal gateway`: the HTTP API, the dashboard and the metrics. */
export const gateway = defineCommand({
  name: "gateway",
  summary:
    "The HTTP gateway: the dashboard at /, GET /health (the whole fleet), the REST API (hosts, containers, events, live SSE, restart, release, pause, policy), /metrics, and the API reference at /docs (docs/API.md).",
  env: ["nats", "natsSecurity", "gateway"],
  exitCodes: ROLE_EXIT_CODES_HELP,
  async start(_args, ctx) {
    const config = (await import("../../gateway/config.js")).loadGatewayConfig(ctx.env);
    return (await import("../../gateway/main.js")).runGateway(config, createLogger("gateway"));
  },
});
