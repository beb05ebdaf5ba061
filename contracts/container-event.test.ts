import { describe, expect, it } from "vitest";
import { ContainerEvent, containerEventId } from "./container-event.js";
import { MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS, MAX_LABELS_TOTAL } from "./labels.js";

const valid = {
  type: "fleetheal.evt.v1.container",
  v: 1,
  id: "host-a:4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a:1795808494172958659:unhealthy",
  host: "host-a",
  action: "unhealthy",
  timeNano: "1795808494172958659",
  time: "2026-11-27T19:41:34.172Z",
  container: {
    id: "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
    name: "shop_web_1",
    image: "registry.local/shop/web:2.3.1",
    labels: { autoheal: "true", "com.docker.compose.service": "web" },
    optedIn: true,
    // Docker's State.StartedAt has nanosecond precision (trailing zeros trimmed).
    startedAt: "2026-11-27T19:41:29.98123456Z",
  },
  source: "docker",
};

describe("ContainerEvent", () => {
  it("accepts a realistic event", () => {
    expect(ContainerEvent.parse(valid)).toEqual(valid);
  });

  it("an event without source (an older agent) is Docker's", () => {
    const { source: _omit, ...older } = valid;
    expect(ContainerEvent.parse(older)).toEqual({ ...older, source: "docker" });
  });

  it.each(["docker", "reconcile", "probe"])("accepts source %s", (source) => {
    expect(ContainerEvent.parse({ ...valid, source }).source).toBe(source);
  });

  it.each([
    "2026-11-27T19:41:29.98123456Z",
    "2026-11-27T19:41:29.981234567Z",
    "2026-11-27T19:41:29Z",
    "2026-11-27T20:41:29.981234567+01:00",
  ])("accepts startedAt %s", (startedAt) => {
    const result = ContainerEvent.safeParse({
      ...valid,
      container: { ...valid.container, startedAt },
    });
    expect(result.success).toBe(true);
  });

  it("accepts a die event with an exit code and no startedAt", () => {
    const { startedAt: _omit, ...container } = valid.container;
    const die = { ...valid, action: "die", exitCode: 137, container };
    expect(ContainerEvent.safeParse(die).success).toBe(true);
  });

  it.each([
    ["unknown action", { action: "health_status" }],
    ["dotted host", { host: "a.b" }],
    ["numeric timeNano", { timeNano: 1795808494 }],
    ["timeNano with a dot", { timeNano: "1795808494.172958659" }],
    ["time without zone", { time: "2026-11-27T19:41:34.172" }],
    ["wrong version", { v: 2 }],
    ["wrong type", { type: "fleetheal.evt.v1.host" }],
    ["fractional exit code", { exitCode: 1.5 }],
    ["unknown source", { source: "gateway" }],
    ["null source", { source: null }],
  ])("rejects %s", (_why, patch) => {
    expect(ContainerEvent.safeParse({ ...valid, ...patch }).success).toBe(false);
  });

  it.each([`sha256:${"0f".repeat(32)}`, `sha512:${"0f".repeat(64)}`])(
    "accepts the image id %s; an event without one (an older agent) too",
    (imageId) => {
      const event = { ...valid, container: { ...valid.container, imageId } };
      expect(ContainerEvent.parse(event)).toEqual(event);
      expect(ContainerEvent.parse(valid).container).not.toHaveProperty("imageId");
    },
  );

  it.each([
    ["bad startedAt", { startedAt: "yesterday" }],
    ["uppercase container id", { id: valid.container.id.toUpperCase() }],
    ["non-string label", { labels: { autoheal: true } }],
    ["missing optedIn", { optedIn: undefined }],
    ["image id that is a name", { imageId: "nginx:1.27" }],
    ["image id without algorithm", { imageId: "0f".repeat(32) }],
    ["uppercase image id", { imageId: `sha256:${"0F".repeat(32)}` }],
    ["image id too long", { imageId: `sha256:${"0f".repeat(65)}` }],
    ["empty image id", { imageId: "" }],
  ])("rejects container with %s", (_why, patch) => {
    expect(
      ContainerEvent.safeParse({ ...valid, container: { ...valid.container, ...patch } }).success,
    ).toBe(false);
  });

  it("containerEventId joins host, id, timeNano and action", () => {
    expect(containerEventId("h1", "abc123abc123", "1795808494172958659", "die")).toBe(
      "h1:abc123abc123:1795808494172958659:die",
    );
  });

  describe("labels are bounded: a replaced agent cannot push more through", () => {
    const withLabels = (labels: Record<string, string>) => ({
      ...valid,
      container: { ...valid.container, labels },
    });
    const many = (n: number, value = "v") =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`autoheal.k${i}`, value]));

    it("accepts labels at the limits, and what was cut", () => {
      expect(ContainerEvent.safeParse(withLabels(many(MAX_LABELS))).success).toBe(true);
      expect(
        ContainerEvent.safeParse(withLabels({ ["k".repeat(MAX_LABEL_KEY)]: "v".repeat(4000) }))
          .success,
      ).toBe(true);
      const cut = {
        ...valid,
        container: { ...valid.container, labelsCut: { truncated: 1, dropped: 2 } },
      };
      expect(ContainerEvent.parse(cut).container.labelsCut).toEqual({ truncated: 1, dropped: 2 });
    });

    it.each([
      ["a value over the limit", { autoheal: "x".repeat(MAX_LABEL_VALUE + 1) }],
      ["a key over the limit", { ["k".repeat(MAX_LABEL_KEY + 1)]: "v" }],
      ["too many labels", many(MAX_LABELS + 1)],
      ["too much in all", many(5, "x".repeat(MAX_LABELS_TOTAL / 4))],
    ])("refuses %s", (_name, labels) => {
      expect(ContainerEvent.safeParse(withLabels(labels)).success).toBe(false);
    });
  });
});
