// How another process (`fleetheal hosts add|remove`) finds and reloads the nats-server that a
// running `fleetheal up` embeds: a control file in the data directory says which process it is
// and where its clients connect, and the server's own ports file where its monitoring (loopback
// only) answers.

import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { FleethealError } from "../common/errors.js";
import { CONFIG_FILE, isServerOf } from "./embedded-nats-process.js";

const CONTROL_FILE = "embedded-nats.json";

/** What a running `up` says about its embedded server. */
const ControlFile = z.strictObject({
  pid: z.number().int().positive(),
  /** The host of the `up` that runs it. */
  host: z.string().max(128),
  /** Where this machine's roles connect. */
  url: z.string().max(512),
  /** The CA of its TLS listener, when it has one. */
  caFile: z.string().max(4096).optional(),
  /** The addresses other hosts dial, for join tokens; empty while it listens on loopback only. */
  advertise: z.array(z.string().max(512)).max(16),
});
export type EmbeddedNatsControl = z.infer<typeof ControlFile>;

/** The embedded server cannot be reached or reloaded. */
export class EmbeddedNatsControlError extends FleethealError {
  override readonly name = "EmbeddedNatsControlError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLEETHEAL_ERR_EMBEDDED_NATS", message, options);
  }
}

export async function writeControlFile(dir: string, control: EmbeddedNatsControl): Promise<void> {
  const file = join(dir, CONTROL_FILE);
  writeFileSync(file, `${JSON.stringify(ControlFile.parse(control))}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function removeControlFile(dir: string): void {
  rmSync(join(dir, CONTROL_FILE), { force: true });
}

/** The running embedded server of the `up` whose data directory is `dir`; undefined if none. */
export function readControlFile(dir: string): EmbeddedNatsControl | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, CONTROL_FILE), "utf8");
  } catch {
    return undefined;
  }
  const parsed = ControlFile.safeParse(JSON.parse(text));
  if (!parsed.success || !running(parsed.data.pid, dir)) return undefined;
  return parsed.data;
}

/**
 * Whether `pid` is still up's server. A control file left by an `up` that was killed may name a
 * pid that another process has taken since: where /proc shows command lines, the process must
 * run this directory's configuration, so that it is never sent a signal meant for the server.
 */
function running(pid: number, dir: string): boolean {
  return existsSync("/proc/self/cmdline") ? isServerOf(pid, join(dir, CONFIG_FILE)) : alive(pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The monitoring URL the server wrote in its ports file (in the data directory). */
function monitorUrl(dir: string, pid: number): string {
  const name = readdirSync(dir).find((f) => f.endsWith(`_${pid}.ports`));
  const ports = name
    ? (JSON.parse(readFileSync(join(dir, name), "utf8")) as { monitoring?: string[] })
    : undefined;
  const url = ports?.monitoring?.[0];
  if (!url) throw new EmbeddedNatsControlError(`nats-server ${pid} wrote no monitoring port`);
  return url;
}

async function configLoadTime(monitor: string): Promise<string> {
  const res = await fetch(`${monitor}/varz`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { config_load_time?: string };
  return body.config_load_time ?? "";
}

/**
 * Has the running embedded server load its configuration again (SIGHUP, as `nats-server --signal
 * reload` does), and waits until it did: connections stay up. Twice, because nats-server 2.9.10
 * gives an account that a reload adds its service imports only on the next reload.
 */
export async function reloadEmbeddedNats(
  control: EmbeddedNatsControl,
  dir: string,
  timeoutMs = 10_000,
): Promise<void> {
  const monitor = monitorUrl(dir, control.pid);
  for (let round = 0; round < 2; round++) {
    const before = await configLoadTime(monitor);
    process.kill(control.pid, "SIGHUP");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await configLoadTime(monitor)) !== before) break;
      if (Date.now() > deadline) {
        throw new EmbeddedNatsControlError(
          `nats-server ${control.pid} did not reload its configuration in ${timeoutMs} ms; its log is in fleetheal up's output`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The accounts of the clients connected now (the monitoring's /connz), by account name. */
export async function connectedAccounts(
  control: EmbeddedNatsControl,
  dir: string,
): Promise<Set<string>> {
  const res = await fetch(`${monitorUrl(dir, control.pid)}/connz?auth=true&limit=100000`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { connections?: { account?: string }[] };
  return new Set((body.connections ?? []).flatMap((c) => (c.account ? [c.account] : [])));
}
