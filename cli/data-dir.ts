import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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
