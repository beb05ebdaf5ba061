// Base images for building and running the compose stack on engines that cannot pull. Each one is
// a rootfs made from this machine's own binaries (node and npm, nats-server) plus the shared
// libraries `ldd` lists for them and the static busybox (a shell and file utilities for the
// Dockerfile's RUN steps and compose's init, `env` for npm's shebang, `wget` for the NATS
// healthcheck), imported with `docker import` under the name the Dockerfile's FROM or
// compose.yaml expects (rootfs.ts).

import { createHash } from "node:crypto";
import { chmod, copyFile, cp, mkdir, realpath, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { findExecutable, run } from "./children.js";
import type { DockerEngine } from "./dockerd.js";
import {
  cachedRootfs,
  findStaticBusybox,
  hasImage,
  importRootfs,
  installBusybox,
  rootfsDir,
} from "./rootfs.js";

/** What goes into one base image. */
interface BaseImageRecipe {
  /** Part of the cache dir's name. */
  kind: string;
  /** Executables copied to the rootfs (with every library `ldd` lists), as [source, target]. */
  binaries: Array<[string, string]>;
  /** Directories copied as they are, as [source, target]. */
  trees: Array<[string, string]>;
  /** Plain files, as [source, target]. */
  files: Array<[string, string]>;
  /** Symlinks in the rootfs, as [target path, link path]. */
  links: Array<[string, string]>;
  /** `docker import --change` instructions. */
  changes: string[];
}

const PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Bumped whenever the rootfs layout changes, so an old cached rootfs is not reused.
const LAYOUT_VERSION = "1";

const rootfsCache = new Map<string, Promise<string>>();

/**
 * Makes sure `tag` exists in `engine` as a Node.js image laid out like the official one: node in
 * /usr/local/bin, npm in /usr/local/lib/node_modules, a user `node` with uid 1000, PATH set and
 * `node` as its command. Node is the binary running this test, npm the one on PATH.
 */
export async function ensureNodeBaseImage(engine: DockerEngine, tag: string): Promise<void> {
  if (await hasImage(engine, tag)) return;
  const recipe = await nodeRecipe();
  await importRootfs(engine, await rootfsOnce(recipe), tag, recipe.changes);
}

async function nodeRecipe(): Promise<BaseImageRecipe> {
  const node = await realpath(process.execPath);
  // npm on PATH is a symlink to <root>/node_modules/npm/bin/npm-cli.js.
  const npmCli = await realpath(await findExecutable("npm", "install Node.js with npm"));
  const npmRoot = path.dirname(path.dirname(npmCli));
  // Where the host's node or npm trusts extra CAs (a TLS-inspecting proxy in front of the
  // registry, as on these machines), the image trusts the same ones, or npm ci in the build stage
  // could not reach the registry that the host's npm reaches.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS || (await npmCaFile());
  const caTarget = "/etc/ssl/certs/node-extra-ca-certificates.crt";
  const recipe: BaseImageRecipe = {
    kind: "node",
    binaries: [[node, "/usr/local/bin/node"]],
    trees: [[npmRoot, "/usr/local/lib/node_modules/npm"]],
    files: extraCa ? [[extraCa, caTarget]] : [],
    links: [
      ["../lib/node_modules/npm/bin/npm-cli.js", "/usr/local/bin/npm"],
      ["../lib/node_modules/npm/bin/npx-cli.js", "/usr/local/bin/npx"],
    ],
    changes: [
      PATH_ENV,
      ...(extraCa ? [`ENV NODE_EXTRA_CA_CERTS=${caTarget}`] : []),
      'CMD ["node"]',
    ],
  };
  return recipe;
}

/**
 * Makes sure `tag` exists in `engine` as a NATS server image: this machine's nats-server as the
 * entrypoint (so compose's `command` gives its flags, as with the official image) and busybox's
 * `wget` for the monitoring-port healthcheck. The binary is where the official nats:2.10-alpine
 * has it, /usr/local/bin/nats-server, which is where infra/Dockerfile copies it from. Debian's
 * build is dynamically linked, but against libc alone (and its loader), which the Node.js base
 * (a glibc one, like this one made from the same machine) has too: the Dockerfile copies the one
 * file, and runs it once, so a binary that needs more fails the build there.
 */
export async function ensureNatsImage(engine: DockerEngine, tag: string): Promise<void> {
  if (await hasImage(engine, tag)) return;
  const recipe = await natsRecipe();
  await importRootfs(engine, await rootfsOnce(recipe), tag, recipe.changes);
}

async function natsRecipe(): Promise<BaseImageRecipe> {
  const natsServer = await realpath(
    await findExecutable("nats-server", "install it with `apt-get install nats-server`"),
  );
  const recipe: BaseImageRecipe = {
    kind: "nats",
    binaries: [[natsServer, "/usr/local/bin/nats-server"]],
    trees: [],
    files: [],
    links: [],
    changes: [PATH_ENV, 'ENTRYPOINT ["nats-server"]', "EXPOSE 4222 6222 8222"],
  };
  return recipe;
}

/**
 * The names of the cached rootfs dirs of the Node.js and NATS base images, which name their
 * inputs: what an image built on them depends on, for its own cache key (fleetheal-image.ts).
 */
export async function baseImageKeys(): Promise<string[]> {
  const recipes = await Promise.all([nodeRecipe(), natsRecipe()]);
  return Promise.all(recipes.map(async (r) => path.basename(await rootfsOnce(r))));
}

// One rootfs per recipe and set of inputs, cached in os.tmpdir() like the busybox one: the node
// rootfs is some 120 MB, and every test process (and every run) can reuse the same dir.
function rootfsOnce(recipe: BaseImageRecipe): Promise<string> {
  const key = JSON.stringify(recipe);
  let pending = rootfsCache.get(key);
  if (!pending) {
    pending = buildRootfs(recipe);
    rootfsCache.set(key, pending);
    pending.catch(() => rootfsCache.delete(key));
  }
  return pending;
}

async function buildRootfs(recipe: BaseImageRecipe): Promise<string> {
  const busybox = await findStaticBusybox();
  // Size and mtime stand in for the content of the sources (hashing node's ~100 MB each time
  // would cost more than it saves); a package upgrade changes both.
  const inputs = [
    busybox,
    ...[...recipe.binaries, ...recipe.trees, ...recipe.files].map(([s]) => s),
  ];
  const hash = createHash("sha256").update(LAYOUT_VERSION).update(JSON.stringify(recipe));
  for (const file of inputs) {
    const s = await stat(file);
    hash.update(`${file}:${s.size}:${s.mtimeMs}:${s.ino}`);
  }
  const finalDir = rootfsDir(`base-${recipe.kind}`, hash.digest("hex").slice(0, 16));
  return cachedRootfs(finalDir, (dir) => populate(dir, recipe, busybox));
}

async function populate(dir: string, recipe: BaseImageRecipe, busybox: string): Promise<void> {
  // `env` for `#!/usr/bin/env` scripts (npm), `wget` for the NATS healthcheck, and the file
  // utilities that the Dockerfile's RUN steps and compose's init use, as the official images
  // have them.
  await installBusybox(dir, busybox, [
    "sh",
    "env",
    "wget",
    "mkdir",
    "chown",
    "chmod",
    "cp",
    "mv",
    "rm",
  ]);
  await mkdir(path.join(dir, "usr", "bin"), { recursive: true });
  await symlink("/bin/busybox", path.join(dir, "usr", "bin", "env"));
  const libraries = new Set<string>();
  for (const [src, target] of recipe.binaries) {
    await copyInto(dir, src, target);
    for (const lib of await sharedLibraries(src)) libraries.add(lib);
  }
  // Libraries go where ldd found them (the path the dynamic loader searches), with the content
  // of the file behind any symlink.
  for (const lib of libraries) await copyInto(dir, await realpath(lib), lib);
  for (const [src, target] of recipe.trees) {
    await cp(src, path.join(dir, target), { recursive: true, verbatimSymlinks: true });
  }
  for (const [src, target] of recipe.files) await copyInto(dir, src, target);
  for (const [target, link] of recipe.links) {
    await mkdir(path.dirname(path.join(dir, link)), { recursive: true });
    await symlink(target, path.join(dir, link));
  }
  await mkdir(path.join(dir, "etc"), { recursive: true });
  // The official node image's user, so that `USER 1000:1000` has a name and a home.
  await writeFile(
    path.join(dir, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
  );
  await writeFile(path.join(dir, "etc", "group"), "root:x:0:\nnode:x:1000:\n");
  await mkdir(path.join(dir, "root"), { mode: 0o700 });
  await mkdir(path.join(dir, "home", "node"), { recursive: true });
  await run("chown", ["1000:1000", path.join(dir, "home", "node")]);
}

async function copyInto(root: string, src: string, target: string): Promise<void> {
  const dest = path.join(root, target);
  await mkdir(path.dirname(dest), { recursive: true });
  await copyFile(src, dest);
  await chmod(dest, (await stat(src)).mode & 0o7777);
}

/**
 * The absolute paths `ldd` prints for a binary: `libx.so => /path (0x…)` and the loader's own
 * `/lib64/ld-linux-x86-64.so.2 (0x…)`. The vDSO has no file; a static binary has no libraries.
 */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { code, stdout, stderr } = await run("ldd", [binary], { allowFailure: true });
  if (code !== 0) {
    if (/not a dynamic executable|statically linked/.test(stdout + stderr)) return [];
    throw new Error(`ldd ${binary} failed (${code}): ${stderr}`);
  }
  const libs: string[] = [];
  for (const line of stdout.split("\n")) {
    if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match?.[1]) libs.push(match[1]);
  }
  return libs;
}

/** The CA file the host's npm is configured with (`cafile`), if any. */
async function npmCaFile(): Promise<string | undefined> {
  const npm = await findExecutable("npm", "install Node.js with npm");
  const { stdout } = await run(npm, ["config", "get", "cafile"], { allowFailure: true });
  const file = stdout.trim();
  return file.startsWith("/") ? file : undefined;
}
