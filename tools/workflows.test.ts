// The GitHub workflows cannot run on CI's own machine, so this checks what can be checked here:
// they parse, run on the right events, and call the scripts and build the Dockerfile that exist.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import pkg from "../package.json" with { type: "json" };

const ROOT = join(import.meta.dirname, "..");

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  "runs-on": string;
  permissions?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
}

function workflow(name: string): Workflow {
  const doc = YAML.parseDocument(readFileSync(join(ROOT, ".github", "workflows", name), "utf8"));
  expect(doc.errors).toEqual([]);
  return doc.toJS() as Workflow;
}

/** The words of a job's `run` steps, joined: a multi-line command reads as one. */
function commands(job: Job): string[][] {
  return job.steps
    .flatMap((s) => (s.run === undefined ? [] : s.run.replaceAll("\\\n", " ").split("\n")))
    .map((line) => line.trim().split(/\s+/));
}

/** The command that starts with `prefix`; exactly one. */
function command(job: Job, ...prefix: string[]): string[] {
  const found = commands(job).filter((words) => prefix.every((w, i) => words[i] === w));
  expect(found, prefix.join(" ")).toHaveLength(1);
  return found[0] as string[];
}

/** The value that follows `option` in a command. */
function option(words: string[], name: string): string | undefined {
  const i = words.indexOf(name);
  return i < 0 ? undefined : words[i + 1];
}

describe(".github/workflows/ci.yml", () => {
  const ci = workflow("ci.yml");

  it("runs .ci/run as root on ubuntu-latest, on pushes to main and on pull requests", () => {
    expect(Object.keys(ci.on).sort()).toEqual(["pull_request", "push"]);
    expect(ci.on.push).toEqual({ branches: ["main"] });
    const jobs = Object.values(ci.jobs);
    expect(jobs).toHaveLength(1);
    const job = jobs[0] as Job;
    expect(job["runs-on"]).toBe("ubuntu-latest");
    expect(job.steps.map((s) => s.uses ?? s.run)).toEqual([
      "actions/checkout@v4",
      "sudo bash .ci/run",
    ]);
    expect(existsSync(join(ROOT, ".ci", "run"))).toBe(true);
  });
});

describe(".github/workflows/release.yml", () => {
  const release = workflow("release.yml");
  const image = release.jobs.image as Job;
  const pack = release.jobs.package as Job;

  it("runs on version tags only", () => {
    expect(release.on).toEqual({ push: { tags: ["v*"] } });
  });

  it("builds infra/Dockerfile for linux/amd64 and linux/arm64 with buildx and pushes it to ghcr.io", () => {
    const uses = image.steps.flatMap((s) => (s.uses ? [s.uses.split("@")[0]] : []));
    expect(uses).toEqual([
      "actions/checkout",
      "docker/setup-qemu-action",
      "docker/setup-buildx-action",
      "docker/login-action",
    ]);
    expect(image.steps.find((s) => s.uses?.startsWith("docker/login-action"))?.with).toMatchObject({
      registry: "ghcr.io",
    });
    expect(image.permissions).toMatchObject({ packages: "write" });
    const build = command(image, "docker", "buildx", "build");
    expect(option(build, "--platform")?.split(",").sort()).toEqual(["linux/amd64", "linux/arm64"]);
    expect(option(build, "--file")).toBe("infra/Dockerfile");
    expect(existsSync(join(ROOT, "infra", "Dockerfile"))).toBe(true);
    expect(option(build, "--tag")).toBe('"$image:$version"');
    // ghcr.io wants the repository's name in lower case.
    expect(commands(image).flat()).toContainEqual(
      expect.stringMatching(/^image="ghcr\.io\/\$\{GITHUB_REPOSITORY,,\}"$/),
    );
    expect(build).toContain("--push");
    expect(build.at(-1)).toBe(".");
  });

  it("packs the package (prepack builds it from clean), attaches it to a release, publishes it", () => {
    expect(pkg.scripts.prepack).toContain("clean");
    expect(pkg.scripts.prepack).toContain("build");
    expect(command(pack, "npm", "ci")).toEqual(["npm", "ci", "--ignore-scripts"]);
    expect(command(pack, "npm", "pack")).toEqual(["npm", "pack"]);
    const gh = command(pack, "gh", "release", "create");
    expect(gh).toContain("fleetheal-*.tgz");
    const publish = command(pack, "npm", "publish");
    expect(publish[2]).toBe("fleetheal-*.tgz");
    const publishStep = pack.steps.find((s) => s.run?.startsWith("npm publish"));
    expect(publishStep?.env).toEqual({
      NODE_AUTH_TOKEN: expect.stringMatching(/^\$\{\{ secrets\.NPM_TOKEN \}\}$/),
    });
    expect(pack.permissions).toMatchObject({ contents: "write" });
  });
});
