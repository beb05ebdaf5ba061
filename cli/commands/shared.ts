import { ContainerParams } from "../../gateway/http/api-schemas.js";
import { UsageError } from "../args.js";
import type { CommandContext } from "../command.js";
import { EXIT_CODES_HELP } from "../exit-codes.js";
import { GatewayClient } from "../gateway-client.js";
import { resolveTarget, type TargetOptions } from "../gateway-config.js";

/** Options every gateway command takes. */
export const GATEWAY_OPTIONS = {
  gateway: {
    type: "string",
    value: "<url>",
    description: "The gateway [FLEETHEAL_GATEWAY_URL, or http://127.0.0.1:8080]",
  },
  "token-file": {
    type: "string",
    value: "<file>",
    description:
      "A file holding the bearer token [FLEETHEAL_GATEWAY_TOKEN or FLEETHEAL_GATEWAY_TOKEN_FILE; for actions also .fleetheal/admin-token, which `fleetheal up` writes]",
  },
  json: { type: "boolean", description: "Print the API's JSON instead of a table" },
} as const;

/**
 * What every gateway command shares besides its options: the variables it reads, its exit
 * codes, and Ctrl-C ending it with an exit code rather than killing it.
 */
export const GATEWAY_COMMAND = {
  env: ["gatewayCommands"],
  exitCodes: EXIT_CODES_HELP,
  stopsOnSignal: true,
} as const;

/** `<host> <container>` of the commands that act on one container. */
export const CONTAINER_POSITIONALS = [
  { name: "<host>", description: "The host's id, as fleetheal hosts lists it" },
  {
    name: "<container>",
    description: "A full id, a unique id prefix (4+ characters) or the container's name",
  },
] as const;

/** A client for the gateway the options and environment name; actions also find `up`'s token. */
export function clientFor(
  options: TargetOptions,
  ctx: CommandContext,
  purpose: { action: boolean },
): GatewayClient {
  const target = resolveTarget(options, ctx.env, { action: purpose.action, cwd: ctx.cwd });
  return new GatewayClient(target, {
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    signal: ctx.signal,
  });
}

/** `--json` output: one document, as the gateway sent it, indented for people reading it too. */
export function printJson(ctx: CommandContext, json: unknown): void {
  ctx.io.out(JSON.stringify(json, null, 2));
}

/** `up 3, stale 1` from counts, leaving out zeros except when everything is zero. */
export function counts(parts: readonly (readonly [string, number])[]): string {
  const nonZero = parts.filter(([, n]) => n > 0);
  return (nonZero.length > 0 ? nonZero : parts.slice(0, 1))
    .map(([label, n]) => `${n} ${label}`)
    .join(", ");
}

/**
 * `<host> <container>` checked with the API's own path schema, so that a typo is a usage error
 * (exit 2) before anything is sent rather than a 400 from the gateway.
 */
export function containerArgs(positionals: readonly string[]): [host: string, ref: string] {
  const [host = "", ref = ""] = positionals;
  const parsed = ContainerParams.safeParse({ host, id: ref });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `${issue?.path[0] === "host" ? "<host>" : "<container>"}: ${issue?.message ?? "invalid"}`,
    );
  }
  return [host, ref];
}
