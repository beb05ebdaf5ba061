// The fleetheal image of infra/Dockerfile, built once and shared by every test that runs it
// (compose.test.ts runs its roles, image.test.ts runs it as `up`). vitest runs each test file
// in a worker process of its own, so the sharing is between processes, through files:
//
// - The image is built by docker-compose from compose.yaml (the build an operator runs: the
//   Dockerfile, `network: host` for npm ci, the default base images as build arguments) in a
//   private engine of its own, on the host's network, and saved with `docker save` to
//   <tmpdir>/fleetheal-image-<key>.tar. The key hashes everything the build reads: the Dockerfile,
//   compose.yaml, .dockerignore and the files it lets into the context, and the inputs of the
//   base images (base-images.ts). A test loads the tar into its own engine with `docker load`.
// - Owner: whichever process first takes <tmpdir>/fleetheal-image.lock (created exclusively,
//   holding its pid) builds; the others wait for the tar, or take over the lock when its owner
//   has died. The tar is renamed into place once complete, so a tar that exists is whole.
// - Clean-up: the owner deletes the tars of other keys (and partial files) once its own is in
//   place, so one image is kept, and reused by later runs for as long as nothing it was built
//   from changes.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { baseImageKeys, ensureNatsImage, ensureNodeBaseImage } from "./base-images.js";
import { findExecutable, isAlive } from "./children.js";
import { type DockerEngine, startDockerEngine } from "./dockerd.js";
import { REPO } from "./fleetheal.js";
import { describeError } from "./wait.js";

/** Bumped whenever how the image is built here changes, so that an old tar is not reused. */
const RECIPE_VERSION = "1";
/**
 * npm ci and tsc inside the build took 65 to 110 s here, on 2 cores shared with other tests and
 * benchmarks; the deadline leaves room for a machine far busier than that.
 */
export const IMAGE_BUILD_TIMEOUT_MS = 480_000;
const CACHE_PREFIX = "fleetheal-image-";
const LOCK = path.join(os.tmpdir(), "fleetheal-image.lock");

/** The image names the Dockerfile's FROM and compose.yaml use when nothing overrides them. */
export async function defaultImages(): Promise<{ node: string; nats: string; fleetheal: string }> {
  const dockerfile = await readFile(path.join(REPO, "infra", "Dockerfile"), "utf8");
  const composeFile = await readFile(path.join(REPO, "compose.yaml"), "utf8");
  const node = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
  const natsInDockerfile = /^ARG NATS_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
  const nodeInCompose = /\$\{FLEETHEAL_NODE_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  const nats = /\$\{FLEETHEAL_NATS_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  const fleetheal = /\$\{FLEETHEAL_IMAGE:-([^}]+)\}/.exec(composeFile)?.[1];
  if (!node || !nats || !fleetheal || nodeInCompose !== node || natsInDockerfile !== nats) {
    throw new Error(
      `cannot read the default images (Dockerfile NODE_IMAGE=${node} NATS_IMAGE=${natsInDockerfile}, compose FLEETHEAL_NODE_IMAGE=${nodeInCompose}, FLEETHEAL_NATS_IMAGE=${nats}, FLEETHEAL_IMAGE=${fleetheal})`,
    );
  }
  return { node, nats, fleetheal };
}

let built: Promise<string> | undefined;

/**
 * Loads the fleetheal image (compose.yaml's default tag) into `engine`, building it first if no
 * process has yet; returns its tag. Allow it {@link IMAGE_BUILD_TIMEOUT_MS} (plus a minute for the
 * load).
 */
export async function ensureFleethealImage(engine: DockerEngine): Promise<string> {
  const { fleetheal } = await defaultImages();
  built ??= buildOnce(fleetheal);
  built.catch(() => {
    built = undefined;
  });
  const tar = await built;
  const progress = await engine.docker.loadImage(createReadStream(tar));
  await new Promise<void>((resolve, reject) => {
    engine.docker.modem.followProgress(progress, (err: Error | null) =>
      err ? reject(err) : resolve(),
    );
  });
  await engine.docker.getImage(fleetheal).inspect();
  return fleetheal;
}

/** The tar of the image: the one in the cache, or one this process builds (or waits for). */
async function buildOnce(tag: string): Promise<string> {
  const tar = path.join(os.tmpdir(), `${CACHE_PREFIX}${await cacheKey()}.tar`);
  const deadline = Date.now() + IMAGE_BUILD_TIMEOUT_MS;
  for (;;) {
    if (await exists(tar)) return tar;
    if (await takeLock()) break;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for another process to build ${tar} (lock ${LOCK})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  try {
    // Built by another process between the check above and the lock.
    if (await exists(tar)) return tar;
    const partial = `${tar}.partial-${process.pid}`;
    await build(tag, partial);
    await rename(partial, tar);
    for (const entry of await readdir(os.tmpdir())) {
      const file = path.join(os.tmpdir(), entry);
      if (entry.startsWith(CACHE_PREFIX) && file !== tar && file !== LOCK) {
        await rm(file, { force: true });
      }
    }
    return tar;
  } finally {
    await rm(LOCK, { force: true });
  }
}

/** Takes the build lock: true if this process now owns it, false if a live process does. */
async function takeLock(): Promise<boolean> {
  try {
    const fh = await open(LOCK, "wx");
    await fh.writeFile(String(process.pid));
    await fh.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const owner = Number((await readFile(LOCK, "utf8").catch(() => "")).trim());
  if (Number.isInteger(owner) && owner > 0 && (await isAlive(owner))) return false;
  // An owner that died (or one that has not written its pid yet: give it a moment).
  const age = Date.now() - (await stat(LOCK).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
  if (!owner && age < 5_000) return false;
  await rm(LOCK, { force: true });
  return false;
}

/** Builds the image in a private engine with docker-compose, and saves it to `file`. */
async function build(tag: string, file: string): Promise<void> {
  const composeBin = await findExecutable(
    "docker-compose",
    "install it with `apt-get install docker-compose` (bash infra/install.sh --test does)",
  );
  const images = await defaultImages();
  // Not in a network namespace of its own: with `network: host`, npm ci in the build reaches the
  // registry as the host itself does.
  const builder = await startDockerEngine("image-build");
  try {
    await Promise.all([
      ensureNodeBaseImage(builder, images.node),
      ensureNatsImage(builder, images.nats),
    ]);
    // The three fleetheal services share one build and one tag: building it for one of them
    // builds it for all. No .env: the image is built from compose.yaml's defaults.
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DOCKER_HOST: builder.dockerHost,
    };
    await new Promise<void>((resolve, reject) => {
      execFile(
        composeBin,
        ["-p", "fhimage", "-f", path.join(REPO, "compose.yaml"), "build", "--force-rm", "agent"],
        { env, cwd: REPO, timeout: IMAGE_BUILD_TIMEOUT_MS - 30_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (!error) return resolve();
          const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-60).join("\n");
          reject(new Error(`building ${tag} failed: ${error.message}\n${tail}`));
        },
      );
    });
    await pipeline(await builder.docker.getImage(tag).get(), createWriteStream(file));
  } catch (error) {
    await rm(file, { force: true });
    throw new Error(`${describeError(error)}\n${await builder.logTail(20)}`, { cause: error });
  } finally {
    await builder.stop();
  }
}

/**
 * What the build reads, hashed: the Dockerfile, compose.yaml, .dockerignore and the files it
 * lets into the context (its `!` entries, less the files its `**` patterns leave out), and the
 * base images' inputs.
 */
async function cacheKey(): Promise<string> {
  const hash = createHash("sha256").update(RECIPE_VERSION);
  for (const key of await baseImageKeys()) hash.update(`base ${key}\n`);
  const ignore = await readFile(path.join(REPO, ".dockerignore"), "utf8");
  const lines = ignore
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const included = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
  const left = lines
    .filter((l) => l.startsWith("**/"))
    .map(
      (l) =>
        new RegExp(
          `^${l
            .slice(3)
            .replace(/[.+^${}()|[\]\\]/g, "\\$&")
            .replace(/\*/g, "[^/]*")}$`,
        ),
    );
  const files = ["infra/Dockerfile", "compose.yaml", ".dockerignore"];
  const walk = async (rel: string): Promise<void> => {
    if (left.some((re) => re.test(path.basename(rel)))) return;
    const full = path.join(REPO, rel);
    const s = await stat(full);
    if (s.isDirectory()) {
      for (const entry of (await readdir(full)).sort()) await walk(path.join(rel, entry));
    } else {
      files.push(rel);
    }
  };
  for (const entry of included) await walk(entry);
  for (const rel of files) {
    hash.update(`${rel}\n`);
    hash.update(await readFile(path.join(REPO, rel)));
  }
  return hash.digest("hex").slice(0, 16);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
