import { parseArgs } from "node:util";
import { describeError } from "../common/errors.js";
import { VERSION } from "../common/version.js";

/** What `fleetheal version --json` prints: for a bug report, or a script that checks a host. */
export interface VersionInfo {
  version: string;
  /** The Node.js that runs fleetheal, without the "v": `26.1.0`. */
  node: string;
  /** `process.platform` and `process.arch`: `linux`, `x64`. */
  platform: string;
  arch: string;
}

export function versionInfo(): VersionInfo {
  return {
    version: VERSION,
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
  };
}

/**
 * `fleetheal version [--json]` (also `-v`, `--version`): the version, or with `--json` the
 * version, Node's version and the platform as one JSON line. Exit code 0, or 2 on a usage error.
 */
export function versionCommand(
  args: readonly string[],
  io: { out: (line: string) => void; err: (line: string) => void },
): number {
  let json: boolean;
  try {
    const options = { json: { type: "boolean" } } as const;
    json =
      parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values.json ??
      false;
  } catch (error) {
    io.err(`${describeError(error)}; usage: fleetheal version [--json]`);
    return 2;
  }
  io.out(json ? JSON.stringify(versionInfo()) : VERSION);
  return 0;
}
