import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { loadEnv } from "../common/config.js";

/**
 * FLEETHEAL_DATA_DIR as `fleetheal up` reads it, and the CLI commands that look for up's files
 * (its admin token, its fleet credentials): one reading, so that they all find the same
 * directory. Relative to the working directory; empty means unset, as for every variable.
 */
export const DATA_DIR_ENV = {
  FLEETHEAL_DATA_DIR: z.string().min(1).max(4096).default(".fleetheal"),
};

/** up's data directory as configured (not resolved): for messages and for `resolve`. */
export function upDataDirSetting(env: NodeJS.ProcessEnv): string {
  return loadEnv(z.object(DATA_DIR_ENV), env).FLEETHEAL_DATA_DIR;
}

/**
 * A secret that `fleetheal up` makes once in its data dir and keeps across restarts: the file is
 * its owner's only (0600, in a directory made 0700), and only its path is ever printed. A file
 * whose content `valid` refuses is made again.
 */
export function ensureSecretFile(
  dataDir: string,
  name: string,
  secret: { valid(content: string): boolean; make(): string },
): string {
  const file = join(dataDir, name);
  try {
    if (secret.valid(readFileSync(file, "utf8"))) return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${secret.make()}\n`, { mode: 0o600 });
  // The mode above applies only to a new file; one being replaced keeps its own.
  chmodSync(file, 0o600);
  return file;
}
