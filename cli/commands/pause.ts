import { type CommandContext, defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { clientFor, GATEWAY_COMMAND, GATEWAY_OPTIONS, printJson } from "./shared.js";

const OPTIONS = {
  reason: { type: "string", value: "<text>", description: "Why, for the gateway's log" },
  ...GATEWAY_OPTIONS,
} as const;

/** `fleetheal pause` and `fleetheal resume` set one flag of the fleet policy; one file for both. */
export const pause = defineCommand({
  ...GATEWAY_COMMAND,
  name: "pause",
  summary: "Pauses healing fleet-wide (admin token).",
  description: `Pauses healing fleet-wide (POST /pause): sets paused in the stored heal policy. Handlers
defer triggers while paused; nothing is lost, and \`fleetheal resume\` acts on them. Needs
the admin token.`,
  options: OPTIONS,
  async run({ options }, ctx) {
    return setPaused(true, options, ctx);
  },
});

export const resume = defineCommand({
  ...GATEWAY_COMMAND,
  name: "resume",
  summary: "Resumes healing (admin token).",
  description: `Resumes healing (POST /resume): clears paused in the stored heal policy; deferred
triggers are acted on. Needs the admin token.`,
  options: OPTIONS,
  async run({ options }, ctx) {
    return setPaused(false, options, ctx);
  },
});

async function setPaused(
  paused: boolean,
  options: { reason?: string; json?: boolean; gateway?: string; "token-file"?: string },
  ctx: CommandContext,
): Promise<number> {
  const client = clientFor(options, ctx, { action: true });
  const { value, json } = await client.setPaused(paused, options.reason);
  if (options.json) printJson(ctx, json);
  else {
    ctx.io.out(
      `${value.paused ? "healing is paused fleet-wide" : "healing is active"} (policy revision ${value.revision})`,
    );
  }
  return EXIT.OK;
}
