import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anchors, deadLinks, docFiles, links, slug } from "./doc-links.js";

describe("the links of README.md and docs/", () => {
  it("all reach an existing file and heading", () => {
    const dead = deadLinks().map((l) => `${l.file}:${l.line}: ${l.target} (${l.reason})`);
    expect(dead).toEqual([]);
  });

  it("covers the README and every page of docs/, nested ones too", () => {
    const files = docFiles();
    expect(files[0]).toBe("README.md");
    expect(files).toContain(path.join("docs", "POLICY.md"));
    expect(files.every((f) => f === "README.md" || f.startsWith(`docs${path.sep}`))).toBe(true);
  });
});

describe("slug", () => {
  it("follows GitHub: lowercase, spaces to '-', punctuation removed, code and underscores kept", () => {
    expect(slug("A fleet that grows from `fleetheal up`")).toBe(
      "a-fleet-that-grows-from-fleetheal-up",
    );
    expect(slug("2. NATS accounts and keys, once")).toBe("2-nats-accounts-and-keys-once");
    expect(slug("Upgrading from a deployment with passwords ($G)")).toBe(
      "upgrading-from-a-deployment-with-passwords-g",
    );
    expect(slug("`FLEETHEAL_LOG_LEVEL`")).toBe("fleetheal_log_level");
    expect(slug("See [the API](API.md) — now")).toBe("see-the-api--now");
  });

  it("keeps the text of code in a heading, angle brackets and all", () => {
    expect([...anchors("### `fleetheal describe <host> <container>`\n")]).toEqual([
      "fleetheal-describe-host-container",
    ]);
    expect([...anchors('## <a id="x"></a>Title\n')]).toEqual(["title", "x"]);
  });

  it("numbers duplicate headings -1, -2 in order", () => {
    const found = anchors("# Setup\n\n## Setup\n\ntext\n\n## Setup\n");
    expect([...found]).toEqual(["setup", "setup-1", "setup-2"]);
  });

  it("ignores headings inside code blocks", () => {
    expect([...anchors("# Real\n\n```sh\n# not a heading\n```\n")]).toEqual(["real"]);
  });
});

describe("links", () => {
  it("finds inline links, images and reference definitions, but none in code", () => {
    const md = [
      'See [a](A.md#x) and ![pic](img/p.png "title").',
      "`[not](code.md)` and [`code text`](B.md).",
      "```",
      "[inside](fence.md)",
      "```",
      "[ref]: C.md",
    ].join("\n");
    expect(links(md)).toEqual([
      { target: "A.md#x", line: 1 },
      { target: "img/p.png", line: 1 },
      { target: "B.md", line: 2 },
      { target: "C.md", line: 6 },
    ]);
  });
});

describe("deadLinks", () => {
  let root: string | undefined;
  afterEach(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it("reports a missing file and a missing anchor, and skips web links and line anchors", () => {
    root = mkdtempSync(path.join(tmpdir(), "doc-links-"));
    mkdirSync(path.join(root, "docs", "reference"), { recursive: true });
    writeFileSync(
      path.join(root, "README.md"),
      [
        "# Top",
        "[ok](docs/A.md#one-two) [self](#top) [web](https://example.com/x.md#nope)",
        "[gone](docs/Missing.md) [bad anchor](docs/A.md#three) [yaml](docs/a.yaml#L3)",
        "[bad self](#nowhere)",
      ].join("\n"),
    );
    writeFileSync(path.join(root, "docs", "A.md"), "## One, two!\n\n[up](../README.md#top)\n");
    writeFileSync(path.join(root, "docs", "a.yaml"), "x: 1\n");
    writeFileSync(path.join(root, "docs", "reference", "B.md"), "[back](../A.md#one)\n");
    expect(deadLinks(root).map((l) => `${l.file}:${l.line} ${l.target}: ${l.reason}`)).toEqual([
      "README.md:3 docs/Missing.md: no file docs/Missing.md",
      "README.md:3 docs/A.md#three: no heading #three in docs/A.md",
      "README.md:4 #nowhere: no heading #nowhere in README.md",
      `${path.join("docs", "reference", "B.md")}:1 ../A.md#one: no heading #one in docs/A.md`,
    ]);
  });
});
