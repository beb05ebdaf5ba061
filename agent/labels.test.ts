import { describe, expect, it } from "vitest";
import { relevantLabels as published } from "./labels.js";

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
