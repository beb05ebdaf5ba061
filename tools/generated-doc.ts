import { readFile, writeFile } from "node:fs/promises";

/**
 * The command line of a doc generator: writes the doc at `path` when `generate` gives something
 * else than what is there, or, with `--check`, only compares and sets exit code 1 when it
 * differs. `generate` gets the current text (empty when there is none), for docs whose generated
 * parts sit between markers in hand-written prose.
 */
export async function writeOrCheck(options: {
  path: string;
  /** The doc and the script, as a person types them, for the message. */
  doc: string;
  script: string;
  generate: (current: string) => string | Promise<string>;
}): Promise<void> {
  const current = await readFile(options.path, "utf8").catch(() => "");
  const generated = await options.generate(current);
  if (process.argv.includes("--check")) {
    if (generated !== current) {
      console.error(`${options.doc} is not current: run npx tsx ${options.script}`);
      process.exitCode = 1;
    }
    return;
  }
  if (generated !== current) await writeFile(options.path, generated);
}

/**
 * `doc` with the text between the markers `start` and `end` replaced by `text`; `name` says which
 * doc lacks them when it does.
 */
export function betweenMarkers(
  doc: string,
  name: string,
  markers: { start: string; end: string },
  text: string,
): string {
  const from = doc.indexOf(markers.start);
  const to = doc.indexOf(markers.end);
  if (from < 0 || to < from) throw new Error(`${name} has no ${markers.start} ... ${markers.end}`);
  return `${doc.slice(0, from + markers.start.length)}\n\n${text}\n\n${doc.slice(to)}`;
}
