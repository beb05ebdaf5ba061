import { UsageError } from "../args.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { clientFor, containerArgs, GATEWAY_COMMAND, GATEWAY_OPTIONS, printJson } from "./shared.js";

const OPTIONS = {
  reason: {
    type: "string",
    value: "<text>",
    description: "Why, kept with the switch and in the audit record",
  },
  ...GATEWAY_OPTIONS,
} as const;

/** `fleetheal healing off|on <host>/<container>`: the run-time switch of one container. */
export const healing = defineCommand({
  ...GATEWAY_COMMAND,
  name: "healing",
  summary:
    "Switches healing off or on for one container (by host and name, so it survives a recreate; admin token).",
  description: `Switches healing off or back on for one container (PUT
/containers/<host>/<container>/healing). The switch is kept in the fleet policy's
disabled list by host and container NAME, so it outlives the container (a recreate
under the same name stays off) and every restart of fleetheal; handlers hold an
unhealthy container that is switched off (held: disabled) instead of healing it.
Each change is recorded (a disabled or enabled remediation record, with who did it);
asking for the state it already has changes and records nothing. <container> is a full
id, a unique id prefix (4+ characters) or the name; to switch back on a name that no
container has any more, give the name. Needs the admin token.`,
  options: OPTIONS,
  positionals: [
    {
      name: "off|on",
      description: "off: fleetheal leaves the container alone; on: heals it again",
    },
    {
      name: "<host>/<container>",
      description: "The host's id and a full id, a unique id prefix or the container's name",
    },
  ],
  notes: `Examples:
  fleetheal healing off web-1/api --reason "debugging the health check"
  fleetheal healing on web-1/api

Exit code 0 when the switch is in the state asked for, also when it already was; an unknown
container (404) or an ambiguous id prefix (409) is an HTTP error (3), as for restart.`,
  async run({ options, positionals }, ctx) {
    const [mode = "", target = ""] = positionals;
    if (mode !== "off" && mode !== "on") {
      throw new UsageError(`"${mode}": off or on`);
    }
    const slash = target.indexOf("/");
    if (slash < 0) throw new UsageError(`"${target}": <host>/<container>, e.g. web-1/api`);
    const [host, ref] = containerArgs([target.slice(0, slash), target.slice(slash + 1)]);
    const client = clientFor(options, ctx, { action: true });
    const { value, json } = await client.setHealing(host, ref, {
      enabled: mode === "on",
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    });
    if (options.json) {
      printJson(ctx, json);
      return EXIT.OK;
    }
    const already = value.changed ? "" : " (already so: nothing changed)";
    const off = value.switchedOff;
    ctx.io.out(
      off
        ? `healing is off for ${value.name} on ${value.host}${already}, since ${off.since} by ${off.by}${off.reason ? `: ${off.reason}` : ""}`
        : `healing is on for ${value.name} on ${value.host}${already}`,
    );
    return EXIT.OK;
  },
});
