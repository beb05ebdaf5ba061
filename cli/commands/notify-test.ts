import { describeError } from "../../common/errors.js";
import { defineCommand } from "../command.js";

/** `fleetheal notify-test`: the code is the notify handler's (handlers/notify/test-send.ts). */
export const notifyTest = defineCommand({
  name: "notify-test",
  summary:
    "Sends a sample notification to every FLEETHEAL_NOTIFY_URLS target and prints OK or FAILED per target; exit code 0 only if all succeeded (docs/NOTIFY.md).",
  // What it reads, and only that: it needs no NATS and none of the handler's other settings.
  env: ["notify", "notifyTest"],
  exitCodes: `Exit codes:
  0  every target took the sample
  1  a target did not
  2  the configuration is invalid, or names no target`,
  // Its messages come with their own prefix from the notify handler's code.
  stderr: "as-written",
  async run(_args, { env, io }) {
    const { notifyTestCommand } = await import("../../handlers/notify/test-send.js");
    const line = (write: (line: string) => void) => (text: string) =>
      write(text.replace(/\n$/, ""));
    return notifyTestCommand(env, line(io.out), line(io.err)).catch((error: unknown) => {
      io.err(`fleetheal notify-test: ${describeError(error)}`);
      return 1;
    });
  },
});
