import { VERSION } from "../../common/version.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";

/** What `fleetheal version --json` prints: for a bug report, or a script that checks a host. */
export interface VersionInfo {
  version: string;
  /** The Node.js that runs fleetheal, without the "v": `26.1.0`. */
  node: string;
  /** `process.platform` and `process.arch`: `linux`, `x64`. */
  platform: string;
  arch: string;
  /** The gateway's, when one answered (absent with --client, or when none did). */
  gateway?: { url: string; version: string };
}

export function versionInfo(): VersionInfo {
  return {
    version: VERSION,
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
  };
}

/** A version is a quick question: a gateway that does not answer at once is reported as such. */
const GATEWAY_TIMEOUT_MS = 3_000;

/** `fleetheal version [--json]`, also `-v` and `--version` (which are `version --client`). */
export const version = defineCommand({
  name: "version",
  summary:
    'Prints the version, and the gateway\'s when one answers; --json prints them with Node.js\'s version and the platform as one JSON object: {"version","node","platform","arch","gateway"}.',
  usage: "fleetheal version [--json] [options]",
  description: `Prints this fleetheal's version on the first line and, when the gateway answers
(GET /livez, which needs no token), the gateway's on the second: gateway <version> at <url>.
A gateway that does not answer within 3 s is reported on stderr, and the exit code is still 0.
-v and --version print this fleetheal's version only, as --client does.`,
  options: {
    json: {
      type: "boolean",
      description:
        "The version, Node.js's version, the platform and the gateway's version (when it answered), as one JSON line",
    },
    client: { type: "boolean", description: "This fleetheal's version only: no request" },
    gateway: {
      type: "string",
      value: "<url>",
      description: "The gateway to ask [FLEETHEAL_GATEWAY_URL, or http://127.0.0.1:8080]",
    },
  },
  async run({ options }, ctx) {
    const info = versionInfo();
    if (!options.client) {
      const answer = await gatewayVersion(options.gateway, ctx.env, ctx.fetch, ctx.signal);
      if ("version" in answer) info.gateway = answer;
      else ctx.io.err(answer.error);
    }
    if (options.json) ctx.io.out(JSON.stringify(info));
    else {
      ctx.io.out(info.version);
      if (info.gateway) ctx.io.out(`gateway ${info.gateway.version} at ${info.gateway.url}`);
    }
    return EXIT.OK;
  },
});

/** The gateway's version, or why there is none; never an error: the client's version stands. */
async function gatewayVersion(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  fetchFn: typeof fetch | undefined,
  signal: AbortSignal,
): Promise<{ url: string; version: string } | { error: string }> {
  try {
    // Loaded only now: `fleetheal -v` needs neither the HTTP client nor the API's schemas.
    const { resolveTarget } = await import("../gateway-config.js");
    const { GatewayClient } = await import("../gateway-client.js");
    // The URL only: /livez is public, and no token goes where it is not needed.
    const { url } = resolveTarget(
      { ...(flag === undefined ? {} : { gateway: flag }) },
      { ...env, FLEETHEAL_GATEWAY_TOKEN: "", FLEETHEAL_GATEWAY_TOKEN_FILE: "" },
      {
        action: false,
        cwd: "/",
      },
    );
    const client = new GatewayClient(
      { url },
      { ...(fetchFn ? { fetch: fetchFn } : {}), timeoutMs: GATEWAY_TIMEOUT_MS, signal },
    );
    const { value } = await client.livez();
    return { url, version: value.version };
  } catch (error) {
    return {
      error: `no gateway version: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
