// What the test images share: no image can be pulled on these machines, so each one is a rootfs
// built from this machine's own files (at least its static busybox), cached in os.tmpdir() and
// imported with `docker import` under the tag a test or a Dockerfile expects.

import { spawn } from "node:child_process";
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  rename,
  rm,
  symlink,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "./children.js";
import type { DockerEngine } from "./dockerd.js";
import { describeError } from "./wait.js";

const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

/**
 * The rootfs in `finalDir`, built by `populate` into a fresh dir first if it is not there yet.
 * The rename is atomic, so `finalDir` exists only once complete, and every test process (and
 * every run) reuses it: vitest ends its workers with SIGTERM, so there is no reliable moment to
 * delete a per-process dir. Losing the race to another process is fine: its dir is identical.
 */
export async function cachedRootfs(
  finalDir: string,
  populate: (dir: string) => Promise<void>,
): Promise<string> {
  if (await isComplete(finalDir)) return finalDir;
  const dir = await mkdtemp(`${finalDir}-tmp-`);
  try {
    await populate(dir);
    const tmp = path.join(dir, "tmp");
    await mkdir(tmp);
    // mkdir applies the umask and drops the sticky bit; chmod sets the exact mode.
    await chmod(tmp, 0o1777);
    await rename(dir, finalDir).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await isComplete(finalDir))) throw err;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return finalDir;
}

/** /tmp is made last, so its presence marks a complete rootfs. */
async function isComplete(dir: string): Promise<boolean> {
  return access(path.join(dir, "tmp")).then(
    () => true,
    () => false,
  );
}

/** A dir in os.tmpdir() for a cached rootfs; `key` names its inputs. */
export function rootfsDir(name: string, key: string): string {
  return path.join(os.tmpdir(), `fleetheal-${name}-${key}`);
}

/** busybox in /bin of `dir` with a symlink per applet; fails unless it has each `needed` one. */
export async function installBusybox(dir: string, busybox: string, needed: string[]) {
  const bin = path.join(dir, "bin");
  await mkdir(bin, { recursive: true });
  await copyFile(busybox, path.join(bin, "busybox"));
  await chmod(path.join(bin, "busybox"), 0o755);
  const { stdout } = await run(busybox, ["--list"]);
  const applets = stdout.split("\n").filter((a) => a !== "" && a !== "busybox");
  const missing = needed.filter((a) => !applets.includes(a));
  if (missing.length > 0) {
    throw new Error(`${busybox} --list lacks ${missing.join(", ")}; is it a full busybox build?`);
  }
  await Promise.all(applets.map((a) => symlink("busybox", path.join(bin, a))));
}

/** The host's busybox, which must be the static build: a rootfs has no libc to link against. */
export async function findStaticBusybox(): Promise<string> {
  const rejected: string[] = [];
  for (const candidate of BUSYBOX_CANDIDATES) {
    try {
      if (await isStaticElf(candidate)) return candidate;
      rejected.push(`${candidate} is dynamically linked`);
    } catch (err) {
      rejected.push(`${candidate}: ${describeError(err)}`);
    }
  }
  throw new Error(
    `no static busybox found (${rejected.join("; ")}); install it with \`apt-get install busybox-static\``,
  );
}

// A binary is static when it has no PT_INTERP program header (static-pie still has PT_DYNAMIC,
// so that one is not a usable signal).
async function isStaticElf(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const header = Buffer.alloc(64);
    await fh.read(header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46) throw new Error("not an ELF file");
    const is64 = header[4] === 2;
    const le = header[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64
      ? Number(le ? header.readBigUInt64LE(0x20) : header.readBigUInt64BE(0x20))
      : u32(header, 0x1c);
    const phentsize = u16(header, is64 ? 0x36 : 0x2a);
    const phnum = u16(header, is64 ? 0x38 : 0x2c);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    const PT_INTERP = 3;
    for (let i = 0; i < phnum; i++) {
      if (u32(table, i * phentsize) === PT_INTERP) return false;
    }
    return true;
  } finally {
    await fh.close();
  }
}

/** Whether `engine` has an image tagged `tag`. */
export async function hasImage(engine: DockerEngine, tag: string): Promise<boolean> {
  try {
    await engine.docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** `tar -C dir -c . | docker import --change … - tag`, against `engine`. */
export async function importRootfs(
  engine: DockerEngine,
  dir: string,
  tag: string,
  changes: string[],
): Promise<void> {
  const [repo, version = "latest"] = tag.split(":") as [string, string | undefined];
  const tar = spawn("tar", ["-C", dir, "-c", "."], { stdio: ["ignore", "pipe", "pipe"] });
  let tarErr = "";
  tar.stderr.on("data", (b: Buffer) => {
    tarErr += b.toString();
  });
  const tarDone = new Promise<number | null>((resolve, reject) => {
    tar.once("error", reject);
    tar.once("close", resolve);
  });
  try {
    const stream = await engine.docker.importImage(tar.stdout, { repo, tag: version, changes });
    // The import reports failures inside a 200 response, as {"error": ...} progress messages.
    await new Promise<void>((resolve, reject) => {
      engine.docker.modem.followProgress(stream, (err: Error | null) =>
        err ? reject(err) : resolve(),
      );
    });
  } catch (err) {
    tar.kill("SIGKILL");
    throw new Error(`importing ${tag} into engine ${engine.name} failed: ${describeError(err)}`, {
      cause: err,
    });
  }
  const code = await tarDone;
  if (code !== 0) throw new Error(`tar of ${dir} exited with ${code}: ${tarErr}`);
  if (!(await hasImage(engine, tag))) {
    throw new Error(`${tag} still missing in engine ${engine.name} after import`);
  }
}
