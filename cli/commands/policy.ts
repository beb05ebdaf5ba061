import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_HEAL_POLICY } from "../../contracts/index.js";
import type { PolicyDocument } from "../../gateway/http/api-schemas.js";
import { type OptionValues, UsageError } from "../args.js";
import { type CommandContext, defineCommand } from "../command.js";
import { editorCommand, runEditor } from "../editor.js";
import { EXIT } from "../exit-codes.js";
import { type GatewayClient, GatewayError } from "../gateway-client.js";
import { quoted, wholeNumber } from "../option-values.js";
import {
  currentRevision,
  type PolicyInput,
  parsePolicy,
  policyRefusal,
  readPolicyText,
} from "../policy-file.js";
import { clientFor, GATEWAY_COMMAND, GATEWAY_OPTIONS, printJson } from "./shared.js";

const OPTIONS = {
  revision: {
    type: "string",
    value: "<n>",
    description:
      "set: replace the policy only if it is still at this revision (sent as If-Match; policy get prints it) [the file's, when it is a policy get --json document]",
  },
  force: {
    type: "boolean",
    description: "set: replace the policy whatever its revision (no If-Match)",
  },
  ...GATEWAY_OPTIONS,
} as const;

type PolicyOptions = OptionValues<typeof OPTIONS>;

/** `fleetheal policy get|set|edit`: the fleet's heal policy, read and replaced safely. */
export const policy = defineCommand({
  ...GATEWAY_COMMAND,
  name: "policy",
  summary:
    "The fleet's heal policy: get prints it (JSON) and its revision; set <file|-> replaces it if unchanged since (If-Match); edit opens it in $EDITOR (admin token).",
  usage: "fleetheal policy get | set <file|-> | edit [options]",
  description: `The fleet's heal policy (docs/POLICY.md), from GET /policy and replaced with PUT /policy.
get prints the policy with every default filled in, as JSON on stdout, and its revision on
stderr; with --json, the API's document {"policy", "revision"}.
set <file> (- for stdin) replaces it with the policy in the file: a policy object, or a
document of get --json, whose revision is then used. The revision goes along as If-Match,
so that a change someone made meanwhile is never overwritten unseen; give --revision <n>,
or --force to overwrite whatever is there.
edit opens the policy in $EDITOR (else $VISUAL, else vi) and sends it back with the
revision it was read at. set and edit need the admin token.`,
  options: OPTIONS,
  positionals: [
    { name: "get|set|edit", description: "Print, replace, or edit the policy" },
    { name: "<file|->", optional: true, description: "set: the policy's JSON file, - for stdin" },
  ],
  notes: `Exit code 1 when someone else changed the policy meanwhile (HTTP 412: nothing was
replaced; edit keeps your version in a file and says how to retry), 2 when the file is not
JSON or the gateway refuses the policy (each field named).
Examples:
  fleetheal policy get --json > policy.json && vi policy.json && fleetheal policy set policy.json
  EDITOR=nano fleetheal policy edit`,
  async run({ options, positionals }, ctx) {
    const [action, file] = positionals;
    if (action !== "get" && action !== "set" && action !== "edit") {
      throw new UsageError(`expected get, set or edit, got ${quoted(action)}`);
    }
    if (action !== "set" && file !== undefined) {
      throw new UsageError(`unexpected argument: ${file} (only set takes a file)`);
    }
    if (action !== "set" && (options.revision !== undefined || options.force)) {
      throw new UsageError(`--revision and --force are for set`);
    }
    if (action === "get") return get(options, ctx);
    const client = clientFor(options, ctx, { action: true });
    if (action === "edit") return edit(client, options, ctx);
    if (file === undefined) throw new UsageError("set needs the policy's file, or - for stdin");
    return set(client, file, options, ctx);
  },
});

async function get(options: PolicyOptions, ctx: CommandContext): Promise<number> {
  const client = clientFor(options, ctx, { action: false });
  let doc: { value: PolicyDocument; json: unknown };
  try {
    doc = await client.policy();
  } catch (error) {
    return invalidStored(error, ctx);
  }
  if (options.json) {
    printJson(ctx, doc.json);
    return EXIT.OK;
  }
  printJson(ctx, (doc.json as { policy: unknown }).policy);
  ctx.io.err(revisionNote(doc.value.revision));
  return EXIT.OK;
}

function revisionNote(revision: number): string {
  return revision === 0
    ? `revision 0: no policy is stored, these are the defaults (fleetheal policy set <file> --revision 0 stores one)`
    : `revision ${revision} (ETag "${revision}"): fleetheal policy set <file> --revision ${revision} replaces it unless it changed meanwhile`;
}

/** GET /policy answers 409 while the stored policy is invalid: say so, and how to replace it. */
function invalidStored(error: unknown, ctx: CommandContext): number {
  if (!(error instanceof GatewayError) || error.code !== "FLEETHEAL_ERR_CONFLICT") throw error;
  const revision = currentRevision(error);
  const reason = (error.details as { reason?: unknown } | undefined)?.reason;
  ctx.io.err(
    `the stored policy${revision === undefined ? "" : ` (revision ${revision})`} is invalid${typeof reason === "string" ? `: ${reason}` : ""}`,
  );
  ctx.io.err(
    `handlers keep their last valid policy meanwhile; replace it: fleetheal policy edit (starts from the defaults), or fleetheal policy set <file>${revision === undefined ? "" : ` --revision ${revision}`}`,
  );
  return EXIT.NEGATIVE;
}

async function set(
  client: GatewayClient,
  file: string,
  options: PolicyOptions,
  ctx: CommandContext,
): Promise<number> {
  const input = parsePolicy(
    await readPolicyText(file, ctx.stdin ?? process.stdin),
    file === "-" ? "stdin" : file,
  );
  const flag =
    options.revision === undefined
      ? undefined
      : wholeNumber("revision", options.revision, 0, Number.MAX_SAFE_INTEGER);
  if (options.force && flag !== undefined) {
    throw new UsageError("--force and --revision exclude each other: give one");
  }
  const revision = options.force ? undefined : (flag ?? input.revision);
  if (revision === undefined && !options.force) {
    throw new UsageError(
      "give --revision <n> (fleetheal policy get prints it), so that a change made meanwhile is not overwritten unseen, or --force to overwrite whatever is there",
    );
  }
  return put(
    client,
    { policy: input.policy, ...(revision === undefined ? {} : { revision }) },
    options,
    ctx,
    {
      retry: (now) =>
        `see what changed with fleetheal policy get, then send yours again with --revision ${now} (or --force to overwrite their change)`,
    },
  );
}

/**
 * Sends the policy; a conflict (412) and a refusal (400) are answers said in words, with what
 * to do next (`advice`). Answers whether it was replaced.
 */
async function put(
  client: GatewayClient,
  input: PolicyInput,
  options: PolicyOptions,
  ctx: CommandContext,
  advice: { retry: (revision: string) => string; fix?: string },
): Promise<number> {
  try {
    const doc = await client.putPolicy(input.policy, input.revision);
    if (options.json) printJson(ctx, doc.json);
    else ctx.io.out(`policy replaced: revision ${doc.value.revision}`);
    return EXIT.OK;
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (error.code === "FLEETHEAL_ERR_PRECONDITION_FAILED") {
      const now = currentRevision(error);
      ctx.io.err(
        `someone else changed the fleet policy: it is at revision ${now ?? "?"} now, not ${input.revision}; nothing was replaced`,
      );
      ctx.io.err(advice.retry(now === undefined ? "<n>" : String(now)));
      return EXIT.NEGATIVE;
    }
    if (error.code === "FLEETHEAL_ERR_BAD_REQUEST") {
      for (const line of policyRefusal(error)) ctx.io.err(line);
      if (advice.fix) ctx.io.err(advice.fix);
      return EXIT.USAGE;
    }
    throw error;
  }
}

async function edit(
  client: GatewayClient,
  options: PolicyOptions,
  ctx: CommandContext,
): Promise<number> {
  let start: { policy: unknown; revision: number };
  try {
    const doc = await client.policy();
    start = { policy: (doc.json as { policy: unknown }).policy, revision: doc.value.revision };
  } catch (error) {
    // An invalid stored policy cannot be shown; the defaults are a place to start from.
    const revision = error instanceof GatewayError ? currentRevision(error) : undefined;
    if (
      !(error instanceof GatewayError) ||
      error.code !== "FLEETHEAL_ERR_CONFLICT" ||
      revision === undefined
    ) {
      throw error;
    }
    invalidStored(error, ctx);
    ctx.io.err("editing the defaults instead");
    start = { policy: DEFAULT_HEAL_POLICY, revision };
  }
  const dir = await mkdtemp(join(tmpdir(), "fleetheal-policy-"));
  const file = join(dir, "policy.json");
  const before = `${JSON.stringify(start.policy, null, 2)}\n`;
  await writeFile(file, before, { mode: 0o600 });
  let keep = false;
  try {
    const editor = editorCommand(ctx.env);
    const code = await runEditor(editor, file, ctx.env);
    if (code !== 0) {
      ctx.io.err(`${editor} exited with ${code}: edit cancelled, nothing was sent`);
      return EXIT.NEGATIVE;
    }
    const after = await readFile(file, "utf8");
    let input: PolicyInput;
    try {
      input = parsePolicy(after, "the edited policy");
    } catch (error) {
      keep = true;
      ctx.io.err((error as Error).message);
      ctx.io.err(keptAt(file, start.revision));
      return EXIT.USAGE;
    }
    if (JSON.stringify(input.policy) === JSON.stringify(start.policy)) {
      ctx.io.out("no change: nothing was sent");
      return EXIT.OK;
    }
    // Kept until the gateway has it: an edit must not be lost to a dropped connection.
    keep = true;
    const sent = await put(
      client,
      { policy: input.policy, revision: start.revision },
      options,
      ctx,
      {
        retry: (now) =>
          `your version is kept in ${file}. To retry: fleetheal policy edit (starts from their version), or fleetheal policy set ${file} --revision ${now} to overwrite their change with yours`,
        fix: keptAt(file, start.revision),
      },
    );
    keep = sent !== EXIT.OK;
    return sent;
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

function keptAt(file: string, revision: number): string {
  return `your version is kept in ${file}: fix it and send it with fleetheal policy set ${file} --revision ${revision}`;
}
