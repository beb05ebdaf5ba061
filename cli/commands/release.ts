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
    description: "Why, added to the released record's message",
  },
  ...GATEWAY_OPTIONS,
} as const;

/**
 * `fleetheal release <host> <container>`: through the gateway, like every client command, so
 * that an operator needs only the gateway URL and the admin token, never NATS credentials, and
 * every release is recorded with the gateway's actor and the client's address.
 */
export const release = defineCommand({
  ...GATEWAY_COMMAND,
  name: "release",
  summary:
    "Releases a quarantined container so that it is healed again, and records who did it (admin token).",
  description: `Releases a quarantined container (POST /containers/<host>/<container>/release) so
that it is healed again, with a fresh restart budget, and records a released remediation
record (code by-hand) with who asked. <container> is a full id, a unique id prefix
(4+ characters) or the name. Needs the admin token.`,
  options: OPTIONS,
  positionals: CONTAINER_POSITIONALS,
  notes: "Exit code 0 when released; 1 when the container is not quarantined (409).",
  async run({ options, positionals }, ctx) {
    const [host, ref] = containerArgs(positionals);
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
