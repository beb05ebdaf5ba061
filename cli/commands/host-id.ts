import { describeError } from "../../common/errors.js";
import { defineCommand } from "../command.js";

/**
 * `fleetheal host-id`: the host id an agent started here would use, for scripts such as
 * compose's `init`, which issues that host's credential before the agent starts.
 */
export const hostId = defineCommand({
  name: "host-id",
  summary:
    "Prints the host id an agent started here would use: FLEETHEAL_HOST_ID, the host of FLEETHEAL_JOIN_TOKEN, in a container the Docker engine's name, else the hostname (compose's init issues that host's credential with it).",
  env: ["agent"],
  exitCodes: `Exit codes:
  0  printed
  2  the agent's configuration is invalid (the message says why)`,
  async run(_args, { env, io }) {
    try {
      const loaded = (await import("../../agent/config.js")).loadAgentConfig(env);
      const config = await (await import("../../agent/host-id.js")).withHostIdOfEngine(loaded, env);
      io.out(config.hostId);
      return 0;
    } catch (error) {
      io.err(describeError(error));
      return 2;
    }
  },
});
