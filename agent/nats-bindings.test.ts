import { JetStreamApiError } from "@nats-io/jetstream";
import { InvalidArgumentError, TimeoutError } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { publishError } from "./nats-bindings.js";
import { UnpublishableError } from "./outbox.js";

describe("publishError", () => {
  it("a payload over the server's max_payload is refused for good", () => {
    const nats = InvalidArgumentError.format("payload", "max_payload size exceeded");
    const error = publishError(nats);
    expect(error).toBeInstanceOf(UnpublishableError);
    expect((error as UnpublishableError).cause).toBe(nats);
  });

  it("a message over the stream's size limit (10054) is refused for good", () => {
    const nats = new JetStreamApiError({
      err_code: 10054,
      code: 400,
      description: "message size exceeds maximum allowed",
    });
    expect(publishError(nats)).toBeInstanceOf(UnpublishableError);
  });

  it.each([
    ["a timeout", new TimeoutError()],
    ["another invalid argument", InvalidArgumentError.format("subject", "is not valid")],
    [
      "another JetStream error",
      new JetStreamApiError({
        err_code: 10077,
        code: 503,
        description: "maximum messages exceeded",
      }),
    ],
    ["anything else", new Error("connection closed")],
  ])("%s is left to be retried", (_name, nats) => {
    expect(publishError(nats)).toBe(nats);
  });
});
