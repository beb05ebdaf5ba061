// Writes docs/asyncapi.yaml from the contracts, or with --check tells whether it is current.
//
//   npm run asyncapi              regenerate docs/asyncapi.yaml
//   npm run asyncapi -- --check   exit 1 if docs/asyncapi.yaml differs from what would be written

import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import { buildAsyncApiDocument } from "./asyncapi-document.js";

/** Where the document lives, relative to the repository root and absolute. */
export const ASYNCAPI_FILE = "docs/asyncapi.yaml";
export const ASYNCAPI_PATH = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  ASYNCAPI_FILE,
);

const HEADER = `# fleetheal's wire API as AsyncAPI 3.0, generated from contracts/ by tools/asyncapi.ts.
# Do not edit by hand: change the contracts (or the generator) and run \`npm run asyncapi\`.
`;

/**
 * The document as YAML text, byte for byte what {@link ASYNCAPI_FILE} must contain. Keys keep the
 * order the generator builds them in; repeated objects are written out rather than turned into
 * YAML anchors, and long lines are never folded, so a diff shows exactly what changed.
 *
 * Strings are quoted as YAML 1.1 needs (PyYAML and other 1.1 readers turn an unquoted ISO time
 * into a timestamp and `on` into a boolean); the text is then read back as YAML 1.1 and 1.2 to
 * prove that both read exactly the document that was written.
 */
export function renderAsyncApi(): string {
  const document = buildAsyncApiDocument();
  const text = YAML.stringify(document, {
    aliasDuplicateObjects: false,
    lineWidth: 0,
    version: "1.1",
  });
  for (const version of ["1.1", "1.2"] as const) {
    if (!isDeepStrictEqual(YAML.parse(text, { version }), document)) {
      throw new Error(`the YAML does not read back as the same document under YAML ${version}`);
    }
  }
  return HEADER + text;
}

/**
 * Compares the text on disk with the generated one. Returns undefined when they are equal, else
 * a message naming the first line that differs and the command that fixes it.
 */
export function staleness(onDisk: string | undefined, generated: string): string | undefined {
  if (onDisk === generated) return undefined;
  const fix = "run `npm run asyncapi` and commit the result";
  if (onDisk === undefined) return `${ASYNCAPI_FILE} does not exist: ${fix}`;
  const a = onDisk.split("\n");
  const b = generated.split("\n");
  let line = 0;
  while (line < a.length && line < b.length && a[line] === b[line]) line++;
  return [
    `${ASYNCAPI_FILE} is out of date with contracts/ (first difference at line ${line + 1}): ${fix}`,
    `  in the file: ${a[line] ?? "(end of file)"}`,
    `  generated:   ${b[line] ?? "(end of file)"}`,
  ].join("\n");
}

/** Reads {@link ASYNCAPI_PATH}; undefined when it does not exist. */
export async function readAsyncApiFile(): Promise<string | undefined> {
  try {
    return await readFile(ASYNCAPI_PATH, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    process.stderr.write(
      `usage: tsx tools/asyncapi.ts [--check] (unknown: ${unknown.join(" ")})\n`,
    );
    return 2;
  }
  const generated = renderAsyncApi();
  if (args.includes("--check")) {
    const problem = staleness(await readAsyncApiFile(), generated);
    if (problem) {
      process.stderr.write(`${problem}\n`);
      return 1;
    }
    process.stdout.write(`${ASYNCAPI_FILE} is up to date\n`);
    return 0;
  }
  await writeFile(ASYNCAPI_PATH, generated);
  process.stdout.write(`wrote ${ASYNCAPI_FILE}\n`);
  return 0;
}

// Run only as a script, so that the test can import the functions above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
