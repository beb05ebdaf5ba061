import { VERSION } from "../../common/version.js";
import { defineCommand } from "../command.js";

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

/** `fleetheal version [--json]`, also `-v` and `--version`. */
export const version = defineCommand({
  name: "version",
  summary:
    'Prints the version; --json prints it with Node.js\'s version and the platform as one JSON object: {"version","node","platform","arch"}.',
  usage: "fleetheal version [--json]",
  options: {
    json: {
      type: "boolean",
      description: "The version, Node.js's version and the platform, as one JSON line",
    },
  },
  async run({ options }, { io }) {
    io.out(options.json ? JSON.stringify(versionInfo()) : VERSION);
    return 0;
  },
});
