import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * `fleetheal up` gives the gateway an admin token so that the dashboard's actions work on a
 * single host out of the box. It is made once, kept in the data dir readable by its owner only,
 * and only its path is ever printed: the token itself never reaches a log.
 */
export function ensureAdminTokenFile(dataDir: string): string {
  const file = join(dataDir, "admin-token");
  try {
    if (readFileSync(file, "utf8").trim().length >= 16) return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  return file;
}
