import { createWriteStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EXPORT_FORMAT,
  ExportFileError,
  type ExportLine,
  ExportWriter,
  isKvRemoval,
  keptHeaders,
  readExportFile,
} from "./nats-migrate-file.js";

describe("keptHeaders", () => {
  const stored: [string, string][] = [
    ["Nats-Msg-Id", "heal:42"],
    ["Nats-Expected-Last-Subject-Sequence", "7"],
    ["nats-expected-stream", "FLEETHEAL_EVENTS"],
    ["Nats-Rollup", "sub"],
    ["KV-Operation", "PURGE"],
    ["Fleetheal-Dlq-Reason", "bad"],
    ["Fleetheal-Dlq-Reason", "twice"],
  ];

  it("drops the conditions and rollups of the first store, keeps ids, KV operations and the rest", () => {
    expect(keptHeaders(false, stored)).toEqual([
      ["Nats-Msg-Id", "heal:42"],
      ["KV-Operation", "PURGE"],
      ["Fleetheal-Dlq-Reason", "bad"],
      ["Fleetheal-Dlq-Reason", "twice"],
    ]);
  });

  it("drops where a sourced event came from, which nats-server would take for its own position", () => {
    const sourced: [string, string][] = [
      ["Nats-Msg-Id", "host-a:1"],
      ["Nats-Stream-Source", "FLEETHEAL_EVENTS_HOST_host-a 57 > >"],
    ];
    expect(keptHeaders(false, sourced)).toEqual([["Nats-Msg-Id", "host-a:1"]]);
  });

  it("drops a dead letter's message id, which names an old stream sequence", () => {
    expect(keptHeaders(true, stored).map(([name]) => name)).not.toContain("Nats-Msg-Id");
  });
});

describe("isKvRemoval", () => {
  it("tells delete and purge markers from values", () => {
    expect(isKvRemoval([["KV-Operation", "DEL"]])).toBe(true);
    expect(isKvRemoval([["KV-Operation", "PURGE"]])).toBe(true);
    expect(isKvRemoval([["Nats-Msg-Id", "DEL"]])).toBe(false);
    expect(isKvRemoval([])).toBe(false);
  });
});

describe("export file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleetheal-migrate-file-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const lines: ExportLine[] = [
    { t: "header", format: EXPORT_FORMAT, v: 1, exportedAt: "2026-01-02T03:04:05.000Z" },
    {
      t: "consumer",
      stream: "FLEETHEAL_EVENTS",
      name: "fleetheal-heal",
      filter: "fleetheal.v1.evt.>",
      ackFloor: 1,
      delivered: 2,
      ackPending: 1,
    },
    { t: "stream", name: "FLEETHEAL_EVENTS", messages: 1, firstSeq: 1, lastSeq: 1 },
    {
      t: "msg",
      seq: 1,
      time: "2026-01-02T03:04:05.000Z",
      subject: "fleetheal.v1.evt.h.c.start",
      headers: [["Nats-Msg-Id", "x"]],
      data: Buffer.from("{}").toString("base64"),
    },
    { t: "end", name: "FLEETHEAL_EVENTS", messages: 1 },
    { t: "done", streams: 1, messages: 1 },
  ];

  async function write(file: string, content: ExportLine[]): Promise<void> {
    const writer = new ExportWriter(createWriteStream(file, { mode: 0o600 }));
    for (const line of content) await writer.write(line);
    await writer.end();
  }

  async function readAll(file: string): Promise<ExportLine[]> {
    const read: ExportLine[] = [];
    for await (const line of readExportFile(file)) read.push(line);
    return read;
  }

  it("reads back every line written", async () => {
    const file = join(dir, "export.jsonl");
    await write(file, lines);
    expect(await readAll(file)).toEqual(lines);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("refuses a file that stops before its last line", async () => {
    const file = join(dir, "cut.jsonl");
    await write(file, lines.slice(0, -1));
    await expect(readAll(file)).rejects.toThrow(/did not finish/);
  });

  it("names the line that is not a record, and refuses a file without its header", async () => {
    const file = join(dir, "bad.jsonl");
    await writeFile(file, `${JSON.stringify(lines[0])}\n{"t":"msg","seq":0}\n`);
    await expect(readAll(file)).rejects.toThrow(/bad\.jsonl:2: not an export record/);
    await writeFile(file, `${JSON.stringify(lines[2])}\n`);
    await expect(readAll(file)).rejects.toThrow(ExportFileError);
    await writeFile(file, "not json\n");
    await expect(readAll(file)).rejects.toThrow(/:1: not JSON/);
  });
});
