// The builds of fleetheal a benchmark measures: this checkout's dist/, and, for a comparison
// (FLEETHEAL_BENCH_BASELINE), a baseline built from another commit, measured in the same run.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { type FleetProcess, type FleetRole, startRole } from "../../test/support/fleetheal.js";
import { BENCH_REPO } from "./children.js";

/** The checkout of the baseline build (its dist/ built), when a benchmark compares two builds. */
export const BASELINE_ENV = "FLEETHEAL_BENCH_BASELINE";

/** One build of fleetheal: a checkout with its dist/ built. */
export interface Build {
  /** `current` is this checkout; `baseline` the build it is compared with. */
  name: "current" | "baseline";
  checkout: string;
  /** Its commit, short. */
  commit: string;
}

function commitOf(checkout: string): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: checkout,
      encoding: "utf8",
      // A checkout without git (an exported tree) is "unknown", without git's complaint.
      stdio: ["ignore", "pipe", "ignore"],
    })
      .toString()
      .trim();
  } catch {
    return "unknown";
  }
}

/** This checkout's build. */
export function currentBuild(): Build {
  return { name: "current", checkout: BENCH_REPO, commit: commitOf(BENCH_REPO) };
}

/** The baseline named by FLEETHEAL_BENCH_BASELINE, if a comparison was asked for. */
export function baselineBuild(): Build | undefined {
  const checkout = process.env[BASELINE_ENV];
  if (!checkout) return undefined;
  const resolved = path.resolve(checkout);
  if (!existsSync(path.join(resolved, "dist", "cli", "main.js"))) {
    throw new Error(`${BASELINE_ENV}=${checkout}: no built fleetheal there (dist/cli/main.js)`);
  }
  return { name: "baseline", checkout: resolved, commit: commitOf(resolved) };
}

/** The CLI operators run, in `build`. */
export function cliOf(build: Build): string {
  return path.join(build.checkout, "bin", "fleetheal.js");
}

/** Starts one role of `build` as operators run it, and waits until it is ready. */
export function startBuildRole(
  build: Build,
  role: FleetRole,
  name: string,
  env: Record<string, string>,
): Promise<FleetProcess> {
  return startRole(role, name, env, build.checkout);
}
