import { describe, expect, it } from "vitest";
import {
  LABEL_TRUNCATION_MARKER,
  Labels,
  labelsSize,
  MAX_LABEL_VALUE,
  MAX_LABELS,
  MAX_LABELS_TOTAL,
} from "../contracts/index.js";
import { capLabels, relevantLabels as published } from "./labels.js";

/** The labels kept; the size limits are tested below. */
const relevantLabels = (labels: Record<string, string>, label: string) =>
  published(labels, label).labels;

describe("relevantLabels", () => {
  const labels = {
    autoheal: "true",
    "autoheal.stop.timeout": "20",
    "autoheal.probe.http": ":8080/healthz",
    "fleetheal.owner": "team-shop",
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "web",
    "com.docker.compose.container-number": "1",
    DB_PASSWORD: "hunter2",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG",
    "traefik.http.routers.web.rule": "Host(`internal.example`)",
    "org.opencontainers.image.source": "https://git.internal/shop/web",
    maintainer: "ops@example.com",
  };

  it("keeps the opt-in label and fleetheal's prefixes, drops everything else", () => {
    expect(relevantLabels(labels, "autoheal")).toEqual({
      autoheal: "true",
      "autoheal.stop.timeout": "20",
      "autoheal.probe.http": ":8080/healthz",
      "fleetheal.owner": "team-shop",
      "com.docker.compose.project": "shop",
      "com.docker.compose.service": "web",
      "com.docker.compose.container-number": "1",
    });
  });

  it("a prefix must end at a dot: look-alike keys are dropped", () => {
    expect(
      relevantLabels(
        {
          autohealer: "x",
          autoheal_token: "secret",
          "fleethealth.key": "secret",
          fleetheal: "x",
          "com.docker.composer.token": "secret",
          "com.docker.compose": "x",
        },
        "autoheal",
      ),
    ).toEqual({});
  });

  it("honours a custom opt-in label and keys under it, but not look-alikes", () => {
    expect(
      relevantLabels(
        {
          "com.example.heal": "true",
          "com.example.heal.note": "owned by shop",
          "com.example.healer": "secret",
          "com.example.db.password": "secret",
          autoheal: "true",
          "autoheal.stop.timeout": "5",
          DB_PASSWORD: "hunter2",
        },
        "com.example.heal",
      ),
    ).toEqual({
      "com.example.heal": "true",
      "com.example.heal.note": "owned by shop",
      // autoheal.* is read whatever the opt-in label (stop timeout, probes)...
      "autoheal.stop.timeout": "5",
    });
  });

  it("when watching all, keeps autoheal's own key, which opts a container out", () => {
    expect(relevantLabels({ autoheal: "False", DB_PASSWORD: "hunter2" }, "all")).toEqual({
      autoheal: "False",
    });
  });

  it("keeps values as they are, empty ones too", () => {
    expect(relevantLabels({ autoheal: "", "autoheal.stop.timeout": " 7 " }, "autoheal")).toEqual({
      autoheal: "",
      "autoheal.stop.timeout": " 7 ",
    });
  });

  it("returns a new object and leaves the input alone", () => {
    const input = { autoheal: "true", DB_PASSWORD: "hunter2" };
    const kept = relevantLabels(input, "autoheal");
    expect(kept).not.toBe(input);
    expect(input).toEqual({ autoheal: "true", DB_PASSWORD: "hunter2" });
    expect(relevantLabels({}, "autoheal")).toEqual({});
  });
});

describe("capLabels", () => {
  const at = (n: number) => `autoheal.k${String(n).padStart(3, "0")}`;

  it("leaves labels within the limits alone and says nothing was cut", () => {
    const labels = { autoheal: "true", "com.docker.compose.service": "web" };
    expect(capLabels(labels)).toEqual({ labels });
  });

  it("cuts a long value to the limit, ending with the marker, and counts it", () => {
    const { labels, cut } = capLabels({ autoheal: "true", "autoheal.note": "x".repeat(1_000_000) });
    const note = labels["autoheal.note"] ?? "";
    expect(note).toHaveLength(MAX_LABEL_VALUE);
    expect(note.endsWith(LABEL_TRUNCATION_MARKER)).toBe(true);
    expect(note.startsWith("xxxx")).toBe(true);
    expect(labels.autoheal).toBe("true");
    expect(cut).toEqual({ truncated: 1, dropped: 0 });
  });

  it("never cuts inside a surrogate pair", () => {
    // An emoji is two UTF-16 units; shifted by one, the cut falls between them unless avoided.
    const value = `a${"😀".repeat(MAX_LABEL_VALUE)}`;
    const cutValue = capLabels({ "autoheal.note": value }).labels["autoheal.note"] ?? "";
    expect(cutValue.endsWith(LABEL_TRUNCATION_MARKER)).toBe(true);
    expect(cutValue.length).toBeLessThanOrEqual(MAX_LABEL_VALUE);
    const beforeMarker = cutValue.charCodeAt(cutValue.length - LABEL_TRUNCATION_MARKER.length - 1);
    expect(beforeMarker >= 0xd800 && beforeMarker <= 0xdbff, "a lone high surrogate").toBe(false);
  });

  it("drops a label whose key is over the limit, whatever its value", () => {
    const { labels, cut } = capLabels({ autoheal: "true", [`autoheal.${"k".repeat(300)}`]: "v" });
    expect(labels).toEqual({ autoheal: "true" });
    expect(cut).toEqual({ truncated: 0, dropped: 1 });
  });

  it("keeps at most MAX_LABELS, shortest keys first, and counts the rest as dropped", () => {
    const many: Record<string, string> = { "autoheal.a-long-key-that-sorts-last": "x" };
    for (let n = 0; n < 200; n++) many[at(n)] = "v";
    many.autoheal = "true";
    const { labels, cut } = capLabels(many);
    expect(Object.keys(labels)).toHaveLength(MAX_LABELS);
    expect(labels.autoheal).toBe("true");
    expect(labels["autoheal.a-long-key-that-sorts-last"]).toBeUndefined();
    expect(labels[at(0)]).toBe("v");
    expect(cut).toEqual({ truncated: 0, dropped: 202 - MAX_LABELS });
  });

  it("keeps the total within MAX_LABELS_TOTAL, still trying the labels that fit", () => {
    const big = "y".repeat(MAX_LABEL_VALUE);
    const input: Record<string, string> = { autoheal: "true" };
    for (let n = 0; n < 10; n++) input[at(n)] = big;
    input["autoheal.zz-small-but-last"] = "ok";
    const { labels, cut } = capLabels(input);
    expect(labelsSize(labels)).toBeLessThanOrEqual(MAX_LABELS_TOTAL);
    expect(labels.autoheal).toBe("true");
    expect(labels["autoheal.zz-small-but-last"]).toBe("ok");
    const kept = Object.keys(labels).filter((k) => labels[k] === big).length;
    expect(kept).toBe(3);
    expect(cut).toEqual({ truncated: 0, dropped: 10 - kept });
  });

  it("what it returns always passes the contract, which refuses the input", () => {
    const hostile: Record<string, string> = {};
    for (let n = 0; n < 500; n++) hostile[at(n)] = "z".repeat(5_000);
    hostile["k".repeat(10_000)] = "v";
    expect(Labels.safeParse(hostile).success).toBe(false);
    const { labels, cut } = capLabels(hostile);
    expect(Labels.safeParse(labels).success).toBe(true);
    expect(cut?.dropped).toBeGreaterThan(0);
    // Deterministic and stable: capping again cuts nothing more.
    expect(capLabels(labels)).toEqual({ labels });
  });

  it("relevantLabels applies the limits after choosing the labels", () => {
    const { labels, cut } = published(
      { autoheal: "true", SECRET: "s".repeat(100_000) },
      "autoheal",
    );
    expect(labels).toEqual({ autoheal: "true" });
    expect(cut).toBeUndefined();
    expect(published({ "autoheal.x": "s".repeat(100_000) }, "autoheal").cut).toEqual({
      truncated: 1,
      dropped: 0,
    });
  });
});
