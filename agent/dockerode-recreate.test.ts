import { PassThrough, Readable } from "node:stream";
import type Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { pullImage } from "./dockerode-recreate.js";

/** Just enough of dockerode for a pull: `pull` answers with `stream`, and records its options. */
function pulling(stream: NodeJS.ReadableStream) {
  const asked: { reference: string; signal: AbortSignal | undefined }[] = [];
  const docker = {
    pull: async (reference: string, options: { abortSignal?: AbortSignal }) => {
      asked.push({ reference, signal: options.abortSignal });
      return stream;
    },
  } as unknown as Docker;
  return { docker, asked };
}

const line = (o: object) => `${JSON.stringify(o)}\n`;

describe("pullImage", () => {
  it("reads Docker's progress to its end, split anywhere, and succeeds without an error line", async () => {
    const progress = [
      line({ status: "Pulling from app", id: "1" }),
      line({ status: "Downloading", progressDetail: { current: 1, total: 2 } }),
      line({ status: "Status: Downloaded newer image for 127.0.0.1:5000/app:1" }),
    ].join("");
    const chunks = [progress.slice(0, 7), progress.slice(7, 50), progress.slice(50)];
    const { docker, asked } = pulling(Readable.from(chunks.map((c) => Buffer.from(c))));
    await pullImage(docker, "127.0.0.1:5000/app:1", 5_000);
    expect(asked.map((a) => a.reference)).toEqual(["127.0.0.1:5000/app:1"]);
  });

  it("fails with the error Docker reports inside its 200 answer, cut to a bounded size", async () => {
    const { docker } = pulling(
      Readable.from([
        Buffer.from(line({ status: "Pulling from app" })),
        Buffer.from(line({ error: `manifest unknown ${"x".repeat(2_000)}`, errorDetail: {} })),
      ]),
    );
    const failure = await pullImage(docker, "app:1", 5_000).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^manifest unknown x+$/);
    expect((failure as Error).message).toHaveLength(512);
  });

  it("gives up after its time, and aborts the request", async () => {
    const stream = new PassThrough();
    stream.write(line({ status: "Downloading" }));
    const { docker, asked } = pulling(stream);
    const failure = await pullImage(docker, "slow/app:1", 50).catch((e: Error) => e);
    expect((failure as Error).message).toBe("pull of slow/app:1 did not finish within 50 ms");
    expect(asked[0]?.signal?.aborted).toBe(true);
    expect(stream.destroyed).toBe(true);
  });
});
