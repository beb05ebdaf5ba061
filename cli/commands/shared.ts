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
      "A file holding the bearer token [FLEETHEAL_GATEWAY_TOKEN or FLEETHEAL_GATEWAY_TOKEN_FILE; for actions on a loopback gateway also .fleetheal/admin-token, which `fleetheal up` writes]",
  },
  json: { type: "boolean", description: "Print the API's JSON instead of a table" },
} as const;

/**
 * `-q` and `--no-headers` of the commands that print a table, for scripts; `quiet` says what
 * `-q` prints instead of the table.
 */
export function tableOptions<const Q extends string>(quiet: Q) {
  return {
    quiet: { type: "boolean", short: "q", description: quiet },
    ...NO_HEADERS_OPTION,
  } as const;
}

/** `--no-headers`, alone for a table with nothing to print by `-q` (events). */
export const NO_HEADERS_OPTION = {
  "no-headers": { type: "boolean", description: "Print the table without its header line" },
} as const;

/** How a table command prints, from `-q`, `--no-headers` and `--json`, which exclude each other. */
export function tableMode(options: {
  quiet?: boolean;
  "no-headers"?: boolean;
  json?: boolean;
}): "json" | "quiet" | { headers: boolean } {
  const given = (["quiet", "no-headers", "json"] as const).filter((o) => options[o] === true);
  if (given.length > 1) {
    throw new UsageError(
      `${given.map((o) => (o === "quiet" ? "-q" : `--${o}`)).join(" and ")} exclude each other: give one`,
    );
  }
  if (options.json) return "json";
  if (options.quiet) return "quiet";
  return { headers: options["no-headers"] !== true };
}

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
    const what = issue?.path[0] === "host" ? "<host>" : "<container>";
    const why =
      issue?.code === "too_big"
        ? `at most ${issue.maximum} characters`
        : issue?.code === "too_small"
          ? "needs a value"
          : (issue?.message ?? "invalid");
    throw new UsageError(`${what}: ${why}`);
  }
  return [host, ref];
}
