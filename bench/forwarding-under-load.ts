// The zero-loss check across a dockerd restart, repeated while every core is busy: runs the
// integration test "stores every transition exactly once when dockerd restarts mid-burst" N times
// beside one CPU-bound process per core, and reports how many runs lost an event (the test says
// LOST), were only late (LATE) or passed, with the worst lateness of each run. Not part of CI: it
// takes minutes and makes the machine busy on purpose. docs/benchmarks/RELIABILITY.md records a run.

import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import { BENCH_REPO } from "./runner/children.js";
import { benchLog, resultFile, runMain, writeResult } from "./runner/report.js";
import { envNumber } from "./runner/settings.js";

const log = benchLog("forwarding-load");
const TEST_FILE = "test/agent-forwarding.test.ts";
const TEST_NAME = "dockerd restarts mid-burst";

/** How one run of the test ended. */
interface RunResult {
  run: number;
  outcome: "passed" | "lost" | "late" | "failed";
  transitions?: number;
  worstLatenessMs?: number;
  /** The test's failure message, for a run that did not pass. */
  detail?: string;
  seconds: number;
}

/** One busy loop per core, niced like nothing: they compete with the test as a real load would. */
function startLoad(cores: number): ChildProcess[] {
  return Array.from({ length: cores }, () =>
    spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }),
  );
}

function stopLoad(load: ChildProcess[]): void {
  for (const child of load) if (child.exitCode === null) child.kill("SIGKILL");
}

/** The test run in progress, stopped with this program so that it never outlives it. */
let current: ChildProcess | undefined;

function runTest(run: number): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      "npx",
      ["vitest", "run", "--project", "integration", TEST_FILE, "-t", TEST_NAME],
      { cwd: BENCH_REPO, env: { ...process.env, FORCE_COLOR: "0" } },
    );
    current = child;
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      current = undefined;
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      const stored = /(\d+) transitions stored once each; worst lateness ([\d.]+) ms/.exec(output);
      if (code === 0 && stored) {
        resolve({
          run,
          outcome: "passed",
          transitions: Number(stored[1]),
          worstLatenessMs: Number(stored[2]),
          seconds,
        });
        return;
      }
      const failure = /(LOST|LATE): [^\n]*/.exec(output);
      const outcome =
        failure?.[1] === "LOST" ? "lost" : failure?.[1] === "LATE" ? "late" : "failed";
      const detail = failure?.[0] ?? output.split("\n").slice(-40).join("\n");
      resolve({ run, outcome, detail: detail.slice(0, 4_000), seconds });
    });
  });
}

async function main(): Promise<void> {
  const runs = envNumber("FLEETHEAL_BENCH_RUNS", 20);
  const cores = envNumber("FLEETHEAL_BENCH_LOAD_PROCESSES", os.availableParallelism());
  const load = startLoad(cores);
  // The test run gets the signal too and stops its nats-server and dockerd before this exits.
  const onSignal = () => {
    stopLoad(load);
    if (!current) process.exit(130);
    current.once("exit", () => process.exit(130));
    current.kill("SIGTERM");
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const results: RunResult[] = [];
  try {
    log(`${runs} runs of "${TEST_NAME}" beside ${cores} busy processes`);
    for (let run = 1; run <= runs; run++) {
      const result = await runTest(run);
      results.push(result);
      const figures =
        result.outcome === "passed"
          ? `${result.transitions} transitions, worst lateness ${result.worstLatenessMs} ms`
          : result.detail;
      log(`run ${run}: ${result.outcome} in ${result.seconds} s: ${figures}`);
    }
  } finally {
    stopLoad(load);
  }
  const count = (outcome: RunResult["outcome"]) =>
    results.filter((r) => r.outcome === outcome).length;
  const lateness = results.flatMap((r) =>
    r.worstLatenessMs === undefined ? [] : [r.worstLatenessMs],
  );
  const summary = {
    runs,
    loadProcesses: cores,
    passed: count("passed"),
    lost: count("lost"),
    late: count("late"),
    failed: count("failed"),
    worstLatenessMs: lateness.length > 0 ? Math.max(...lateness) : undefined,
    results,
  };
  console.log(
    `${summary.passed}/${runs} passed, ${summary.lost} lost, ${summary.late} late, ${summary.failed} failed otherwise; worst lateness ${summary.worstLatenessMs ?? "-"} ms`,
  );
  await writeResult(resultFile("forwarding-under-load.json"), summary, log);
  if (summary.passed !== runs)
    throw new Error(`${runs - summary.passed} of ${runs} runs did not pass`);
}

runMain(main);
