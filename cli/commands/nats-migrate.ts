import { UsageError } from "../args.js";
import { defineCommand } from "../command.js";

/** The options each verb takes; the file option comes first. */
const VERB_OPTIONS = { export: ["out"], import: ["in", "keys"] } as const;

/**
 * `fleetheal nats-migrate export --out <file>` and `… import --in <file> [--keys <dir>]`: carries
 * a deployment's data from NATS's global account into the accounts of nats-auth (the code, and
 * why through a file, is in cli/nats-migrate.ts; loaded only when it runs).
 */
export const natsMigrate = defineCommand({
  name: "nats-migrate",
  summary:
    "Moves a deployment made with passwords (its data in NATS's global account $G) into the accounts of nats-auth: export with the old handler's environment, then import with the new handler's (its agents' keys beside its seed, or in --keys). Exit codes: 0 done and every count checked, 1 failed or refused, 2 usage or configuration. See docs/DEPLOY.md, \"Upgrading from a deployment with passwords\".",
  description:
    "Moves a deployment made with passwords (its data in NATS's global account $G) into the accounts of nats-auth. The data goes through a file: export it with the old handler's environment, stop every role, then import it with the new handler's environment (its agents' keys beside its seed, or in --keys). Every stream, bucket and handler position is counted on both sides. See docs/DEPLOY.md, \"Upgrading from a deployment with passwords\".",
  usage: "fleetheal nats-migrate export --out <file> | import --in <file> [--keys <dir>]",
  positionals: [
    {
      name: "export|import",
      description: "export with the old handler's environment, import with the new handler's",
    },
  ],
  options: {
    out: { type: "string", value: "<file>", description: "export: the file to write" },
    in: { type: "string", value: "<file>", description: "import: the file export wrote" },
    keys: {
      type: "string",
      value: "<dir>",
      description:
        "import: where nats-auth wrote the agents' keys [the directory of FLEETHEAL_NATS_NKEY_FILE]",
    },
  },
  env: ["nats", "natsSecurity"],
  exitCodes: `Exit codes:
  0  done, and every count checked
  1  failed or refused: NATS unreachable or failing, a stream that changed while it was
     exported, an import whose counts do not match, an unreadable or incomplete file
  2  usage or configuration: arguments, variables, refused credentials or TLS, an existing
     output file, a missing input file, missing keys`,
  async run({ options, positionals }, ctx) {
    const verb = positionals[0] as string;
    if (verb !== "export" && verb !== "import") {
      throw new UsageError(`unknown verb ${JSON.stringify(verb)}: export or import`);
    }
    const [fileOption] = VERB_OPTIONS[verb];
    const wrong = Object.keys(options).find(
      (name) => !(VERB_OPTIONS[verb] as readonly string[]).includes(name),
    );
    if (wrong !== undefined) throw new UsageError(`--${wrong} is not an option of ${verb}`);
    const file = options[fileOption];
    if (file === undefined) throw new UsageError(`${verb} needs --${fileOption} <file>`);
    const { runNatsMigrate } = await import("../nats-migrate.js");
    return runNatsMigrate(verb, file, options.keys, ctx.env, ctx.io);
  },
});
