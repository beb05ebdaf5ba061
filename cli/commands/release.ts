import { UsageError } from "../args.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { GatewayError } from "../gateway-error.js";
import {
  CONTAINER_POSITIONALS,
  clientFor,
  containerArgs,
  GATEWAY_COMMAND,
  GATEWAY_OPTIONS,
  printJson,
} from "./shared.js";

const OPTIONS = {
  reason: {
    type: "string",
    value: "<text>",
    description: "Why, for the released record (through the gateway only)",
  },
  nats: {
    type: "boolean",
    description:
      "Go to NATS directly even when FLEETHEAL_GATEWAY_URL is set (the FLEETHEAL_NATS_* variables configure the connection)",
  },
  ...GATEWAY_OPTIONS,
} as const;

/**
 * `fleetheal release <host> <container>`. With no gateway named (or with --nats) it talks to
 * NATS directly, so it works on a host with NATS credentials and no gateway; it goes through the
 * gateway (audited with the gateway's actor and address, admin token) when one is named, so an
 * operator's laptop needs only the gateway URL and a token.
 */
export const release = defineCommand({
  ...GATEWAY_COMMAND,
  name: "release",
  summary:
    "Releases a quarantined container (by id, id prefix or name) so it is healed again, and records who did it: through the gateway when --gateway or FLEETHEAL_GATEWAY_URL is given, otherwise directly over NATS. Exit code 0 when released, 1 when not quarantined, 2 on bad arguments or NATS configuration (including refused credentials or TLS).",
  env: ["gatewayCommands", "nats", "natsSecurity"],
  description: `Releases a quarantined container (by id, id prefix or name) so that it is healed again,
with a fresh restart budget, and records who did it.

Through the gateway (POST /containers/<host>/<container>/release, admin token) when
--gateway or FLEETHEAL_GATEWAY_URL is given; otherwise directly over NATS, configured by
FLEETHEAL_NATS_URL and the NATS security variables like every role (fleetheal --help).`,
  options: OPTIONS,
  positionals: CONTAINER_POSITIONALS,
  notes: `Exit code 0 when released; 1 when the container is not quarantined. Over NATS: 1 also
when NATS is unreachable or the release fails, 2 on bad arguments or NATS configuration
(including refused credentials or TLS). Through the gateway: 3 and 4 as below.`,
  async run({ options, positionals }, ctx) {
    const [host, ref] = positionals as [string, string];
    const viaGateway =
      options.gateway !== undefined || (ctx.env.FLEETHEAL_GATEWAY_URL ?? "") !== "";
    if (options.nats && options.gateway !== undefined) {
      throw new UsageError("--nats and --gateway: choose one");
    }
    if (options.nats || !viaGateway) {
      for (const name of ["reason", "token-file", "json"] as const) {
        if (options[name] !== undefined) {
          throw new UsageError(`--${name} works through the gateway only: add --gateway <url>`);
        }
      }
      // Loaded only here: the NATS client is not needed to talk to the gateway.
      const { releaseCommand } = await import("../release.js");
      return releaseCommand([host, ref], ctx.env, ctx.io);
    }
    containerArgs(positionals);
    const client = clientFor(options, ctx, { action: true });
    try {
      const { value, json } = await client.release(
        host,
        ref,
        options.reason === undefined ? {} : { reason: options.reason },
      );
      if (options.json) printJson(ctx, json);
      else
        ctx.io.out(`released ${value.name} (${value.containerId.slice(0, 12)}) on ${value.host}`);
      return EXIT.OK;
    } catch (error) {
      // Not quarantined is a 409: the command worked, the answer is no.
      if (error instanceof GatewayError && error.code === "FLEETHEAL_ERR_CONFLICT") {
        ctx.io.err(`${error.code} (HTTP ${error.status}): ${error.message}`);
        return EXIT.NEGATIVE;
      }
      throw error;
    }
  },
});
