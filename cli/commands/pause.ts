import { type CommandContext, defineCommand, GATEWAY_OPTIONS } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { clientFor, printJson } from "./shared.js";

const REASON = {
  name: "reason",
  kind: "string",
  value: "<text>",
  description: "Why, for the gateway's log",
} as const;

/** `fleetheal pause` and `fleetheal resume` set one flag of the fleet policy; one file for both. */
export const pause = defineCommand({
  name: "pause",
  usage: "fleetheal pause [options]",
  description: `Pauses healing fleet-wide (POST /pause): sets paused in the stored heal policy. Handlers
defer triggers while paused; nothing is lost, and \`fleetheal resume\` acts on them. Needs
the admin token.`,
  options: [REASON, ...GATEWAY_OPTIONS],
  positionals: 0,
  async run({ options }, ctx) {
    return setPaused(true, options, ctx);
  },
});

export const resume = defineCommand({
  name: "resume",
  usage: "fleetheal resume [options]",
  description: `Resumes healing (POST /resume): clears paused in the stored heal policy; deferred
triggers are acted on. Needs the admin token.`,
  options: [REASON, ...GATEWAY_OPTIONS],
  positionals: 0,
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
