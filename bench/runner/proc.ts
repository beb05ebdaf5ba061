// What a process costs, read from Linux's /proc: CPU time (utime+stime of /proc/<pid>/stat) and
// resident memory (VmRSS and its peak VmHWM of /proc/<pid>/status).

import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { round } from "./numbers.js";

let ticksPerSecond: Promise<number> | undefined;

/** The kernel's clock ticks per second (USER_HZ), in which /proc reports CPU time. */
export function clockTicks(): Promise<number> {
  ticksPerSecond ??= promisify(execFile)("getconf", ["CLK_TCK"]).then(
    (r) => Number(r.stdout.trim()) || 100,
    () => 100,
  );
  return ticksPerSecond;
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

/** utime+stime of a process, in ms. */
export async function cpuMs(pid: number): Promise<number> {
  return ((await cpuTicks(pid)) / (await clockTicks())) * 1000;
}

/** utime+stime of this process, in ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface ProcStat {
  cpuMs: number;
  rssKb: number;
  /** The peak resident memory so far. */
  hwmKb: number;
}

/** A process's CPU time and resident memory now. */
export async function procStat(pid: number): Promise<ProcStat> {
  const [cpu, status] = await Promise.all([cpuMs(pid), readFile(`/proc/${pid}/status`, "utf8")]);
  return {
    cpuMs: cpu,
    rssKb: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
    hwmKb: Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
  };
}

export interface ProcSample extends ProcStat {
  /** performance.now() when it was taken. */
  at: number;
}

/** Samples `pid` every `intervalMs` until stopped; stop() takes one last sample. */
export function startSampler(pid: number, intervalMs: number) {
  const samples: ProcSample[] = [];
  let stopped = false;
  const sample = async () => ({ at: performance.now(), ...(await procStat(pid)) });
  const loop = (async () => {
    while (!stopped) {
      samples.push(await sample());
      await delay(intervalMs);
    }
  })();
  return {
    samples,
    async stop(): Promise<ProcSample[]> {
      stopped = true;
      await loop;
      samples.push(await sample());
      return samples;
    },
  };
}

/** What a process cost over a sampled window. */
export interface Footprint {
  seconds: number;
  cpuPercentOfOneCore: number;
  rssMbMax: number;
  rssMbFinal: number;
}

export function footprint(samples: ProcSample[]): Footprint {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || samples.length < 2) throw new Error("not enough process samples");
  const seconds = (last.at - first.at) / 1000;
  const cpuSeconds = (last.cpuMs - first.cpuMs) / 1000;
  return {
    seconds: round(seconds, 1),
    cpuPercentOfOneCore: round((cpuSeconds / seconds) * 100, 3),
    rssMbMax: round(Math.max(...samples.map((s) => s.rssKb)) / 1024, 1),
    rssMbFinal: round(last.rssKb / 1024, 1),
  };
}
