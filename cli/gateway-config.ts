import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, describeError } from "../common/errors.js";
import { upDataDirSetting } from "./data-dir.js";

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080";

/** Where a command sends its requests, and the bearer token it sends. */
export interface GatewayTarget {
  /** Absolute http(s) URL without a trailing slash; it may carry a path (a reverse proxy's). */
  url: string;
  token?: string;
  /** Where the token came from, for error messages (never the token itself). */
  tokenSource?: string;
}

export interface TargetOptions {
  gateway?: string;
  "token-file"?: string;
}

/**
 * The gateway URL and token (a ConfigError, exit 2, when unusable), from the command line
 * first, then the environment, then (for actions only) the admin token `fleetheal up` keeps in
 * its data dir: an operator on the host that runs `up` can act without configuring anything,
 * while reads never send the admin token unless told to.
 */
export function resolveTarget(
  options: TargetOptions,
  env: NodeJS.ProcessEnv,
  purpose: { action: boolean; cwd: string },
): GatewayTarget {
  const url = gatewayUrl(
    options.gateway ?? nonEmpty(env.FLEETHEAL_GATEWAY_URL) ?? DEFAULT_GATEWAY_URL,
    options.gateway === undefined && nonEmpty(env.FLEETHEAL_GATEWAY_URL) !== undefined
      ? "FLEETHEAL_GATEWAY_URL"
      : "--gateway",
  );
  const fromFlag = options["token-file"];
  if (fromFlag !== undefined) {
    return { url, token: readToken(fromFlag, "--token-file"), tokenSource: fromFlag };
  }
  const inline = nonEmpty(env.FLEETHEAL_GATEWAY_TOKEN);
  const file = nonEmpty(env.FLEETHEAL_GATEWAY_TOKEN_FILE);
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError(
      "FLEETHEAL_GATEWAY_TOKEN and FLEETHEAL_GATEWAY_TOKEN_FILE are both set: set only one",
    );
  }
  if (inline !== undefined) {
    return {
      url,
      token: checkToken(inline, "FLEETHEAL_GATEWAY_TOKEN"),
      tokenSource: "FLEETHEAL_GATEWAY_TOKEN",
    };
  }
  if (file !== undefined) {
    return { url, token: readToken(file, "FLEETHEAL_GATEWAY_TOKEN_FILE"), tokenSource: file };
  }
  if (!purpose.action) return { url };
  const dataDir = upDataDirSetting(env);
  const shown = join(dataDir, "admin-token");
  // The token `up` wrote is for the gateway `up` runs here. Sent to whatever URL is set, a
  // typo or a stale FLEETHEAL_GATEWAY_URL would hand the fleet's admin token to another
  // machine, possibly over plain HTTP: elsewhere it is sent only when named explicitly.
  if (!isLoopback(url)) {
    throw new ConfigError(
      `this command needs the gateway's admin token, and ${url} is not on this machine: ${shown} is sent only to a loopback gateway (127.0.0.0/8, ::1, localhost). Name the token explicitly: --token-file <file>, or FLEETHEAL_GATEWAY_TOKEN_FILE or FLEETHEAL_GATEWAY_TOKEN`,
    );
  }
  const upToken = join(resolve(purpose.cwd, dataDir), "admin-token");
  let text: string;
  try {
    text = readFileSync(upToken, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(`cannot read the admin token ${upToken}: ${describeError(error)}`);
    }
    throw new ConfigError(
      `this command needs the gateway's admin token: pass --token-file <file>, set FLEETHEAL_GATEWAY_TOKEN or FLEETHEAL_GATEWAY_TOKEN_FILE, or run it where \`fleetheal up\` keeps ${shown}`,
    );
  }
  return { url, token: checkToken(text.trim(), upToken), tokenSource: upToken };
}

/** Whether a gateway URL names this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.toLowerCase();
  if (host === "localhost" || host === "[::1]") return true;
  // URL has already made every IPv4 spelling (127.1, 0x7f.0.0.1) dotted-decimal.
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function gatewayUrl(value: string, from: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${from}: ${JSON.stringify(value)} is not a URL (http://host:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(
      `${from}: the gateway URL must be http:// or https://, not ${url.protocol}`,
    );
  }
  if (url.search || url.hash) {
    throw new ConfigError(`${from}: the gateway URL cannot have a query or a fragment`);
  }
  // Credentials in the URL would be sent as Basic auth (and end up in shell history); the
  // gateway takes bearer tokens only.
  if (url.username || url.password) {
    throw new ConfigError(`${from}: put the token in a file (--token-file), not in the URL`);
  }
  return url.href.replace(/\/+$/, "");
}

function readToken(file: string, from: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${from}: cannot read ${file}: ${describeError(error)}`);
  }
  return checkToken(text.trim(), `${from} (${file})`);
}

/** Reported by length, never by value, like the gateway does with its own token variables. */
function checkToken(token: string, from: string): string {
  if (token.length === 0) throw new ConfigError(`${from}: the token is empty`);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError(
      `${from}: the token (${token.length} characters) must be printable ASCII without spaces`,
    );
  }
  return token;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
