/**
 * The exit codes of the commands that talk to the gateway. Scripts branch on them, so they are
 * part of the CLI's interface: docs/CLI.md and `fleetheal --help` list the same table.
 */
export const EXIT = {
  /** The command worked and the answer is positive (the fleet is healthy, the restart happened). */
  OK: 0,
  /**
   * The command worked but the answer is negative: the fleet is degraded or unhealthy, a restart
   * was skipped, refused or failed in Docker, a release found nothing quarantined, no such host
   * or container (as docker's "No such container"), a policy changed by someone else meanwhile.
   */
  NEGATIVE: 1,
  /** Bad arguments, or configuration the CLI cannot use (gateway URL, token file). */
  USAGE: 2,
  /**
   * The gateway could not give an answer: unreachable, timed out, any HTTP error not covered
   * above (a route it does not have: a gateway older than the CLI), or a body that does not
   * match the API's schema.
   */
  GATEWAY: 3,
  /** The gateway refused the token (401), or actions are disabled on it (403). */
  AUTH: 4,
  /** Ctrl-C or SIGTERM before a one-shot command had its answer (128 + SIGINT, as shells do). */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The table printed by `fleetheal --help` and the per-command help. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  the command worked, the answer is negative (fleet degraded or unhealthy; restart
     skipped, refused or failed; release of a container that is not quarantined; no such
     host or container; the policy was changed by someone else meanwhile)
  2  usage or configuration error (arguments, gateway URL, token file, a policy the gateway
     refuses)
  3  gateway unreachable, timed out, an HTTP error, or an answer that is not the API's
  4  authentication refused (401: missing or wrong token; 403: actions disabled)
  130  interrupted (Ctrl-C) before the answer; events --follow exits 0 on Ctrl-C`;

/** The exit codes of the roles (common/lifecycle.ts), for their help. */
export const ROLE_EXIT_CODES_HELP = `Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  1  failed to start; or to stop (a second signal, or stopping took longer than 20 s)
  2  configuration error: the message names every bad variable`;
