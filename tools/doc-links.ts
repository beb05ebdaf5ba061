// Checks the relative links of README.md and docs/**/*.md: each must name a file that exists and,
// with a `#anchor`, a heading of that file as GitHub slugs it (tools/doc-links.test.ts fails on a
// dead one, so renaming a heading or moving a page cannot silently break the way in).
//
//   npx tsx tools/doc-links.ts   print every dead link, exit 1 if there is one

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A link found in a markdown file, with the 1-based line it is on. */
export interface DocLink {
  readonly target: string;
  readonly line: number;
}

/** A link that names a missing file or heading. */
export interface DeadLink extends DocLink {
  /** The markdown file holding the link, relative to the repository root. */
  readonly file: string;
  readonly reason: string;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const ATX_HEADING = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const INLINE_LINK =
  /!?\[((?:[^\]\\]|\\.)*)\]\(\s*(?:<([^>]*)>|([^)\s]+))(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/;
const HTML_ANCHOR = /<a\s+(?:[^>]*\s)?(?:id|name)="([^"]+)"/g;
// What github-slugger removes: everything but letters, marks, numbers, connector punctuation
// (`_`), spaces and hyphens.
const NOT_SLUG = /[^\p{L}\p{M}\p{N}\p{Pc} -]/gu;

/** The lines of a markdown text outside fenced code blocks, with inline code spans blanked. */
function proseLines(markdown: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((raw, index) => {
    const marker = FENCE.exec(raw)?.[1];
    if (fence !== undefined) {
      // A fence closes with at least as many of the same character as opened it.
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) {
        fence = undefined;
      }
      return;
    }
    if (marker !== undefined) {
      fence = marker;
      return;
    }
    // Keep the span's text (a heading's slug includes it) but not as markdown: a `[x](y)` inside
    // backticks is not a link.
    const text = raw.replace(/(`+)(.+?)\1/g, (_m, _ticks: string, code: string) =>
      code.replace(/[[\]()<>]/g, ""),
    );
    out.push({ text, line: index + 1 });
  });
  return out;
}

/** GitHub's anchor for a heading's text, before duplicates are numbered. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[((?:[^\]\\]|\\.)*)\]\([^)]*\)/g, "$1") // a link's text only
    .replace(/<[^>]+>/g, ""); // HTML tags
  return text.toLowerCase().replace(NOT_SLUG, "").replace(/ /g, "-");
}

/** Every anchor a markdown text has: its headings' slugs (duplicates get -1, -2, …) and HTML ids. */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = ATX_HEADING.exec(text);
    if (heading !== null) {
      const base = slug(heading[1] ?? "");
      let anchor = base;
      let count = seen.get(base) ?? 0;
      while (found.has(anchor)) anchor = `${base}-${++count}`;
      seen.set(base, count);
      found.add(anchor);
    }
    for (const match of text.matchAll(HTML_ANCHOR)) found.add(match[1] ?? "");
  }
  return found;
}

/** Every link of a markdown text outside code: inline links, images and reference definitions. */
export function links(markdown: string): DocLink[] {
  const out: DocLink[] = [];
  for (const { text, line } of proseLines(markdown)) {
    const definition = REFERENCE_DEFINITION.exec(text);
    if (definition?.[1] !== undefined) out.push({ target: definition[1], line });
    for (const match of text.matchAll(INLINE_LINK)) {
      const target = match[2] ?? match[3];
      if (target !== undefined && target !== "") out.push({ target, line });
    }
  }
  return out;
}

/** README.md and every markdown file under docs/, relative to the repository root. */
export function docFiles(root: string = REPO_ROOT): string[] {
  const docs = readdirSync(path.join(root, "docs"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".md"))
    .map((file) => path.join("docs", file))
    .sort();
  return ["README.md", ...docs];
}

/** The dead relative links and anchors of the given markdown files (relative to root). */
export function deadLinks(root: string = REPO_ROOT, files: string[] = docFiles(root)): DeadLink[] {
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (absolute: string): Set<string> => {
    let cached = anchorCache.get(absolute);
    if (cached === undefined) {
      cached = anchors(readFileSync(absolute, "utf8"));
      anchorCache.set(absolute, cached);
    }
    return cached;
  };
  const dead: DeadLink[] = [];
  for (const file of files) {
    const absoluteFile = path.join(root, file);
    for (const link of links(readFileSync(absoluteFile, "utf8"))) {
      // Web links (http:, https:, mailto:, protocol-relative) are not this checker's business.
      if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith("//")) continue;
      const hash = link.target.indexOf("#");
      const pathPart = hash === -1 ? link.target : link.target.slice(0, hash);
      const anchor = hash === -1 ? undefined : decodeURIComponent(link.target.slice(hash + 1));
      const target =
        pathPart === ""
          ? absoluteFile
          : path.resolve(path.dirname(absoluteFile), decodeURIComponent(pathPart));
      if (!existsSync(target)) {
        dead.push({ ...link, file, reason: `no file ${path.relative(root, target)}` });
        continue;
      }
      // Anchors into other kinds of file (`asyncapi.yaml#L10`) are line links GitHub makes up.
      if (anchor === undefined || !target.endsWith(".md") || statSync(target).isDirectory()) {
        continue;
      }
      if (!anchorsOf(target).has(anchor)) {
        dead.push({
          ...link,
          file,
          reason: `no heading #${anchor} in ${path.relative(root, target)}`,
        });
      }
    }
  }
  return dead;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dead = deadLinks();
  for (const link of dead) {
    console.log(`${link.file}:${link.line}: ${link.target} (${link.reason})`);
  }
  process.exitCode = dead.length === 0 ? 0 : 1;
}
