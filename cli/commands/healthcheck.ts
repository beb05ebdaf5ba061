import { defineCommand } from "../command.js";
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_STALE_MS, healthcheckCommand } from "../healthcheck.js";

/** `fleetheal healthcheck [role]`: the container image's HEALTHCHECK (cli/healthcheck.ts). */
export const healthcheck = defineCommand({
  name: "healthcheck",
  summary:
    "The container image's HEALTHCHECK: exit code 0 when the role running in this container (PID 1's, unless named) is healthy, 1 with the reason when not.",
  description: `Checks the fleetheal role running in this container, for Docker's HEALTHCHECK: exit code 0 when healthy, 1 when not, with one line saying why. Without a role it checks the container's main process (PID 1). gateway and up: GET /livez on FLEETHEAL_GATEWAY_PORT. agent and handler: the heartbeat the running role refreshes every ${HEARTBEAT_INTERVAL_MS / 1000} s (stale after ${HEARTBEAT_STALE_MS / 1000} s); agent and up also: Docker answers at DOCKER_HOST.`,
  positionals: [
    {
      name: "agent|handler|gateway|up",
      optional: true,
      description: "The role to check [the role of PID 1]",
    },
  ],
  exitCodes: `Exit codes:
  0  healthy
  1  unhealthy, or a usage error (Docker reserves 2)`,
  usageExitCode: 1,
  // The verdict line goes to Docker's health log as it is written.
  stderr: "as-written",
  async run({ positionals }, { env, io }) {
    return healthcheckCommand(positionals[0], io, { env });
  },
});
