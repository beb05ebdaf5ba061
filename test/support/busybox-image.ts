// No image can be pulled on these machines, so the test image is imported from a rootfs made of
// the host's static busybox. It must be the static build: the rootfs has no libc to link against.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { DockerEngine } from "./dockerd.js";
import {
  cachedRootfs,
  findStaticBusybox,
  hasImage,
  importRootfs,
  installBusybox,
  rootfsDir,
} from "./rootfs.js";

/** Tag of the busybox test image inside every engine. */
export const TEST_IMAGE = "fleetheal-test/busybox:latest";

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
  if (await hasImage(engine, TEST_IMAGE)) return;
  await importRootfs(engine, await buildRootfsOnce(), TEST_IMAGE, ["ENV PATH=/bin"]);
}

/**
 * Imports the busybox rootfs into `engine` as a new image `name` and returns its id. Docker stamps
 * each import with its time, so the id is the new image's own: for tests that tell images apart
 * by id rather than by name.
 */
export async function importTestImage(engine: DockerEngine, name: string): Promise<string> {
  await importRootfs(engine, await buildRootfsOnce(), name, ["ENV PATH=/bin"]);
  return (await engine.docker.getImage(name).inspect()).Id;
}

function buildRootfsOnce(): Promise<string> {
  rootfs ??= buildRootfs();
  rootfs.catch(() => {
    rootfs = undefined;
  });
  return rootfs;
}

// The rootfs is named after the busybox binary, so a busybox upgrade builds a new one.
async function buildRootfs(): Promise<string> {
  const busybox = await findStaticBusybox();
  const digest = createHash("sha256")
    .update(await readFile(busybox))
    .digest("hex")
    .slice(0, 16);
  return cachedRootfs(rootfsDir("busybox", digest), (dir) =>
    installBusybox(dir, busybox, ["sh", "test"]),
  );
}
