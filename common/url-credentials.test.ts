import { describe, expect, it } from "vitest";
import { withoutCredentials } from "./url-credentials.js";

describe("withoutCredentials", () => {
  it.each([
    ["nats://alice:s3cret@nats-1:4222", "nats://[redacted]@nats-1:4222"],
    ["nats://tok_abc@nats-1:4222", "nats://[redacted]@nats-1:4222"],
    ["tls://a:b@x:4222,nats://y:4222", "tls://[redacted]@x:4222,nats://y:4222"],
    ["a:b@x:4222, c:d@y:4222", "[redacted]@x:4222, [redacted]@y:4222"],
    ["nats://nats-1:4222", "nats://nats-1:4222"],
    ["nats://127.0.0.1:4222/path@part", "nats://127.0.0.1:4222/path@part"],
  ])("%s -> %s", (raw, printed) => {
    expect(withoutCredentials(raw)).toBe(printed);
  });

  it("takes a list of URLs", () => {
    expect(withoutCredentials(["nats://u:p@a:1", "nats://b:2"])).toBe(
      "nats://[redacted]@a:1,nats://b:2",
    );
  });
});
