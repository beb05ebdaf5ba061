import type { RestartResult } from "../../gateway/http/api-schemas.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { GatewayError } from "../gateway-error.js";
import { wholeNumber } from "../option-values.js";
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
    description: "Why, for the audit trail [restarted by hand from <address>]",
  },
  "stop-timeout": {
    type: "string",
    value: "<seconds>",
    description:
      "Seconds between SIGTERM and SIGKILL, 0-3600, winning over the container's autoheal.stop.timeout label as docker restart -t does [the label, else the agent's]",
  },
  "idempotency-key": {
    type: "string",
    value: "<key>",
    description: "Makes a retry safe: the same key never restarts twice",
  },
  ...GATEWAY_OPTIONS,
} as const;

/** `fleetheal restart <host> <container>`: a manual restart through the host's agent. */
export const restart = defineCommand({
  ...GATEWAY_COMMAND,
  name: "restart",
  summary: "Restarts a container by hand through its agent (admin token).",
  description: `Restarts one container by hand (POST /containers/<host>/<container>/restart): the
gateway asks the host's agent, which acts only on opted-in containers, and records
remediation records (restarting, then restarted or failed, code by-hand) with who asked.
<container> is a full id, a unique id prefix (4+ characters) or the name. Needs the admin
token. Not counted in the container's restart budget.`,
  options: OPTIONS,
  positionals: CONTAINER_POSITIONALS,
  notes: `Exit code 0 when the agent restarted it; 1 when it skipped it (already restarting),
refused it (not opted in, or an ambiguous prefix: 409) or Docker failed (502).`,
  async run({ options, positionals }, ctx) {
    const [host, ref] = containerArgs(positionals);
    const stopTimeout =
      options["stop-timeout"] === undefined
        ? undefined
        : wholeNumber("stop-timeout", options["stop-timeout"], 0, 3600);
    const client = clientFor(options, ctx, { action: true });
    let answer: { value: RestartResult; json: unknown };
    try {
      answer = await client.restart(
        host,
        ref,
        {
          ...(options.reason === undefined ? {} : { reason: options.reason }),
          ...(stopTimeout === undefined ? {} : { stopTimeoutSeconds: stopTimeout }),
        },
        options["idempotency-key"],
      );
    } catch (error) {
      // A refusal (409) or a Docker failure (502) is the agent's answer: the command worked.
      if (
        error instanceof GatewayError &&
        (error.code === "FLEETHEAL_ERR_CONFLICT" || error.code === "FLEETHEAL_ERR_DOCKER")
      ) {
        ctx.io.err(`${error.code} (HTTP ${error.status}): ${error.message}`);
        return EXIT.NEGATIVE;
      }
      throw error;
    }
    const r = answer.value;
    if (options.json) printJson(ctx, answer.json);
    else ctx.io.out(describeRestart(host, ref, r));
    return r.outcome === "restarted" ? EXIT.OK : EXIT.NEGATIVE;
  },
});

function describeRestart(host: string, ref: string, r: RestartResult): string {
  const repeat = r.duplicate ? " (a repeat of the same idempotency key: the first answer)" : "";
  if (r.outcome === "restarted") {
    return `restarted ${ref} on ${host} in ${Math.round(r.durationMs)} ms${repeat} [command ${r.commandId}]`;
  }
  return `${r.outcome} ${ref} on ${host}: ${r.code}: ${r.message}${repeat} [command ${r.commandId}]`;
}
