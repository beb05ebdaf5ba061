// No image can be pulled on these machines, so the test image is imported from a rootfs made of
// the host's static busybox. It must be the static build: the rootfs has no libc to link against.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rename,
  rm,
  symlink,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "./children.js";
import type { DockerEngine } from "./dockerd.js";
import { describeError } from "./wait.js";

/** Tag of the busybox test image inside every engine. */
export const TEST_IMAGE = "fleetheal-test/busybox:latest";

const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

let rootfs: Promise<string> | undefined;
const imported = new WeakMap<DockerEngine, Promise<void>>();

/**
 * Makes sure {@link TEST_IMAGE} exists in `engine`, importing it from a busybox rootfs if absent.
 * The rootfs is built once and cached in os.tmpdir() under a name derived from the busybox
 * binary; concurrent calls for one engine share one import.
 */
export function ensureBusyboxImage(engine: DockerEngine): Promise<void> {
  let pending = imported.get(engine);
  if (!pending) {
    pending = importIfMissing(engine);
    imported.set(engine, pending);
    // Only the in-flight import is shared; later calls re-check, since a test may remove the image.
    pending.then(
      () => imported.delete(engine),
      () => imported.delete(engine),
    );
  }
  return pending;
}

async function importIfMissing(engine: DockerEngine): Promise<void> {
  if (await hasImage(engine)) return;
  const dir = await buildRootfsOnce();
  const [repo, tag] = TEST_IMAGE.split(":") as [string, string];

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
    // Same as `tar -C dir -c . | docker import -c 'ENV PATH=/bin' - TEST_IMAGE`.
    const stream = await engine.docker.importImage(tar.stdout, {
      repo,
      tag,
      changes: ["ENV PATH=/bin"],
    });
    // The import reports failures inside a 200 response, as {"error": ...} progress messages.
    await new Promise<void>((resolve, reject) => {
      engine.docker.modem.followProgress(stream, (err: Error | null) =>
        err ? reject(err) : resolve(),
      );
    });
  } catch (err) {
    tar.kill("SIGKILL");
    throw new Error(
      `importing ${TEST_IMAGE} into engine ${engine.name} failed: ${describeError(err)}`,
      { cause: err },
    );
  }
  const code = await tarDone;
  if (code !== 0) throw new Error(`tar of ${dir} exited with ${code}: ${tarErr}`);
  if (!(await hasImage(engine))) {
    throw new Error(`${TEST_IMAGE} still missing in engine ${engine.name} after import`);
  }
}

async function hasImage(engine: DockerEngine): Promise<boolean> {
  try {
    await engine.docker.getImage(TEST_IMAGE).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function buildRootfsOnce(): Promise<string> {
  rootfs ??= buildRootfs();
  rootfs.catch(() => {
    rootfs = undefined;
  });
  return rootfs;
}

// The rootfs is cached under a name derived from the busybox binary, so every test process (and
// every run) reuses one dir instead of leaving a new one behind: vitest ends its workers with
// SIGTERM, so there is no reliable moment to delete a per-process dir.
async function buildRootfs(): Promise<string> {
  const busybox = await findStaticBusybox();
  const digest = createHash("sha256")
    .update(await readFile(busybox))
    .digest("hex")
    .slice(0, 16);
  const finalDir = path.join(os.tmpdir(), `fleetheal-busybox-${digest}`);
  if (await isComplete(finalDir)) return finalDir;

  const dir = await mkdtemp(path.join(os.tmpdir(), "fleetheal-busybox-tmp-"));
  try {
    const bin = path.join(dir, "bin");
    await mkdir(bin);
    await copyFile(busybox, path.join(bin, "busybox"));
    await chmod(path.join(bin, "busybox"), 0o755);
    const { stdout } = await run(busybox, ["--list"]);
    const applets = stdout.split("\n").filter((a) => a !== "" && a !== "busybox");
    if (!applets.includes("sh") || !applets.includes("test")) {
      throw new Error(`${busybox} --list lacks sh or test; is it a full busybox build?`);
    }
    await Promise.all(applets.map((a) => symlink("busybox", path.join(bin, a))));
    const tmp = path.join(dir, "tmp");
    await mkdir(tmp);
    // mkdir applies the umask and drops the sticky bit; chmod sets the exact mode.
    await chmod(tmp, 0o1777);
    // rename is atomic, so the final dir exists only once complete. Losing the race to another
    // process is fine: its dir is identical.
    await rename(dir, finalDir).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await isComplete(finalDir))) throw err;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return finalDir;
}

async function isComplete(dir: string): Promise<boolean> {
  return access(path.join(dir, "tmp")).then(
    () => true,
    () => false,
  );
}

async function findStaticBusybox(): Promise<string> {
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
