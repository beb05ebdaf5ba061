import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ContractViolationError, decode, encode } from "./codec.js";
import { ContainerEvent } from "./container-event.js";

const event: ContainerEvent = {
  type: "fleetheal.evt.v1.container",
  v: 1,
  id: "host-a:4f1c2b3a9d8e:1795808494172958659:unhealthy",
  host: "host-a",
  action: "unhealthy",
  timeNano: "1795808494172958659",
  time: "2026-11-27T19:41:34.172Z",
  container: {
    id: "4f1c2b3a9d8e",
    name: "web",
    image: "nginx:1.27",
    labels: { autoheal: "true" },
    optedIn: true,
    startedAt: "2026-11-27T19:41:29.98123456Z",
  },
  source: "docker",
};

describe("encode/decode", () => {
  it("round-trips a valid value", () => {
    const bytes = encode(event);
    expect(bytes).toBeInstanceOf(Uint8Array);
    const decoded = decode(ContainerEvent, bytes);
    expect(decoded).toEqual({ ok: true, value: event });
  });

  it("decodes a string too", () => {
    expect(decode(ContainerEvent, JSON.stringify(event))).toEqual({ ok: true, value: event });
  });

  it("encodes as UTF-8 JSON", () => {
    expect(new TextDecoder().decode(encode({ name: "héllo" }))).toBe('{"name":"héllo"}');
  });

  it.each([
    ["truncated", '{"type":"fleetheal'],
    ["empty", ""],
    ["not json", "hello"],
    ["trailing comma", '{"a":1,}'],
  ])("bad JSON (%s) -> FLEETHEAL_ERR_BAD_JSON", (_why, text) => {
    const decoded = decode(ContainerEvent, new TextEncoder().encode(text));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBeInstanceOf(ContractViolationError);
    expect(decoded.error.code).toBe("FLEETHEAL_ERR_BAD_JSON");
    expect(decoded.error.name).toBe("ContractViolationError");
    expect(decoded.error.message).toBe("message is not valid JSON");
    expect(decoded.error.issues).toEqual([]);
    expect(decoded.error.cause).toBeInstanceOf(SyntaxError);
  });

  it("schema mismatch -> FLEETHEAL_ERR_SCHEMA with the issue paths", () => {
    const broken = {
      ...event,
      host: "a.b",
      container: { ...event.container, id: "NOT-AN-ID", optedIn: "yes" },
    };
    const decoded = decode(ContainerEvent, encode(broken));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.code).toBe("FLEETHEAL_ERR_SCHEMA");
    expect(decoded.error.issues.map((i) => i.path).sort()).toEqual([
      "container.id",
      "container.optedIn",
      "host",
    ]);
    expect(decoded.error.message.startsWith("message does not match its schema: ")).toBe(true);
    expect(decoded.error.message).toContain("host: may contain only letters, digits, '_' and '-'");
    expect(decoded.error.cause).toBeInstanceOf(z.ZodError);
  });

  it("names the root when the message is not an object", () => {
    const decoded = decode(ContainerEvent, "42");
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.code).toBe("FLEETHEAL_ERR_SCHEMA");
    expect(decoded.error.issues.map((i) => i.path)).toEqual(["(root)"]);
  });

  it("joins nested array paths with dots", () => {
    const schema = z.object({ items: z.array(z.object({ n: z.number() })) });
    const decoded = decode(schema, '{"items":[{"n":1},{"n":"two"}]}');
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.issues.map((i) => i.path)).toEqual(["items.1.n"]);
  });

  it("summarises at most five issues in the message but keeps all of them", () => {
    const schema = z.object({
      a: z.string(),
      b: z.string(),
      c: z.string(),
      d: z.string(),
      e: z.string(),
      f: z.string(),
    });
    const decoded = decode(schema, "{}");
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.issues).toHaveLength(6);
    expect(decoded.error.message).toContain("e: ");
    expect(decoded.error.message).not.toContain("f: ");
  });
});
