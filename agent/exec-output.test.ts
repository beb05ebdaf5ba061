import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { readExecOutput } from "./exec-output.js";

/** One frame of Docker's multiplexed stream: stream 1 (stdout), the size, the bytes. */
function frame(text: string | Buffer): Buffer {
  const body = typeof text === "string" ? Buffer.from(text) : text;
  const header = Buffer.alloc(8);
  header.writeUInt8(1, 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe("readExecOutput", () => {
  it("joins frames, split anywhere, and keeps the last characters", async () => {
    const stream = new PassThrough();
    const read = readExecOutput(stream, 5_000, 8);
    const bytes = Buffer.concat([frame("hello "), frame("world\n")]);
    stream.write(bytes.subarray(0, 5));
    stream.write(bytes.subarray(5));
    stream.end();
    expect(await read).toEqual({ text: "lo world", timedOut: false, cut: false });
  });

  it("stops reading past the byte limit, even inside one huge frame", async () => {
    const stream = new PassThrough();
    let destroyed = false;
    stream.on("close", () => {
      destroyed = true;
    });
    const read = readExecOutput(stream, 5_000, 16, 1_000);
    // A frame that announces 1 GB: its bytes are never kept whole.
    const header = Buffer.alloc(8);
    header.writeUInt32BE(1_000_000_000, 4);
    stream.write(header);
    stream.write(Buffer.alloc(2_000, 0x61));
    const output = await read;
    expect(output.cut).toBe(true);
    expect(output.timedOut).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(destroyed).toBe(true);
  });

  it("gives up at the deadline", async () => {
    const stream = new PassThrough();
    const output = await readExecOutput(stream, 20, 16);
    expect(output).toMatchObject({ timedOut: true, cut: false });
  });
});
