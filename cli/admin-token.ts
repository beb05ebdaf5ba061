import { randomBytes } from "node:crypto";
import { ensureSecretFile } from "./data-dir.js";

/**
 * `fleetheal up` gives the gateway an admin token so that the dashboard's actions work on a
 * single host out of the box. It is made once, kept in the data dir readable by its owner only,
 * and only its path is ever printed: the token itself never reaches a log.
 */
export function ensureAdminTokenFile(dataDir: string): string {
  return ensureSecretFile(dataDir, "admin-token", {
    valid: (content) => content.trim().length >= 16,
    make: () => randomBytes(24).toString("base64url"),
  });
}
