import { MAX_HEALTH_OUTPUT } from "../contracts/index.js";

/** Marks a line whose head was cut off because it alone is longer than the output may be. */
const CUT = "…";

/**
 * Turns a health check's raw output (Docker's `State.Health.Log` entry, a label probe's result)
 * into what events, snapshots and records carry (the contract's `HealthOutput`): every control character
 * but the newline escaped as `\u00XX` (C0 including `\r`, `\t` and ESC, DEL, and the C1 range
 * U+0080–U+009F), trailing whitespace trimmed, and at most {@link MAX_HEALTH_OUTPUT} characters,
 * taken from the end, because a check prints its verdict last. Whole lines are kept where they
 * fit; when the last line alone is too long, its tail is kept after a leading `…`. Empty output
 * is undefined. Surrogate pairs are never split. Escaping comes first so that a person, a
 * terminal or a chat message reading the output cannot be steered by it (colours, cursor moves,
 * a `\r` that overwrites what came before).
 *
 * The work is bounded by the result's size, not the input's: only the last
 * {@link MAX_HEALTH_OUTPUT} characters can contribute, since escaping never shortens anything.
 */
export function healthOutput(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const trimmed = raw.trimEnd();
  if (trimmed.length === 0) return undefined;
  // One character more than can be kept: the window's first line always reaches back beyond
  // what can be kept (or is empty, when that character ends a line), so it is never whole.
  let window = trimmed.slice(-(MAX_HEALTH_OUTPUT + 1));
  const firstLineIsWhole = window.length === trimmed.length;
  // A cut between the halves of a surrogate pair leaves a lone low half: drop it.
  if (isLowSurrogate(window.charCodeAt(0))) window = window.slice(1);
  const lines = wellFormed(window).split("\n");
  const kept: string[] = [];
  let length = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const text = lines[i] ?? "";
    const line = escapeControls(text);
    const added = line.length + (kept.length > 0 ? 1 : 0);
    if (length + added > MAX_HEALTH_OUTPUT || (i === 0 && !firstLineIsWhole)) {
      // Not even the last line fits: its end is what the check said last.
      if (kept.length === 0) kept.push(CUT + tailOf(text, MAX_HEALTH_OUTPUT - CUT.length));
      break;
    }
    kept.push(line);
    length += added;
  }
  const result = kept.reverse().join("\n");
  return result.length > 0 ? result : undefined;
}

/** Escapes every control character but `\n` (C0, DEL, C1) as `\u00XX`. */
function escapeControls(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  return line.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/**
 * The end of one line, escaped, in at most `max` characters: whole characters and whole escapes
 * only, taken from the end.
 */
function tailOf(line: string, max: number): string {
  const parts: string[] = [];
  let length = 0;
  let i = line.length;
  while (i > 0) {
    const start = isLowSurrogate(line.charCodeAt(i - 1)) && i > 1 ? i - 2 : i - 1;
    const part = escapeControls(line.slice(start, i));
    if (length + part.length > max) break;
    parts.push(part);
    length += part.length;
    i = start;
  }
  return parts.reverse().join("");
}

/** Lone surrogates (from output decoded badly) as U+FFFD, so the text encodes as UTF-8. */
function wellFormed(text: string): string {
  return text.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    "\ufffd",
  );
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
