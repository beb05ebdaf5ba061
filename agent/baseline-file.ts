import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { decode, encode, HostSnapshot } from "../contracts/index.js";
import type { AgentBaseline } from "./agent-ports.js";

/** The baseline file of `host` in the agent's data directory. */
export function baselineFile(dataDir: string, host: string): string {
  return join(dataDir, `agent-${host}.snapshot.json`);
}

/**
 * {@link AgentBaseline} in a file. A save writes a temporary file and renames it over the old
 * one, so a crash mid-write leaves the previous baseline, never half of one. A file that is
 * missing, unreadable or not a snapshot of this host loads as no baseline: the agent then
 * reconciles from scratch, as on its very first start.
 */
export function fileBaseline(file: string, host: string): AgentBaseline {
  const temporary = `${file}.tmp`;
  return {
    async load() {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
      const decoded = decode(HostSnapshot, bytes);
      if (!decoded.ok) throw new Error(`${file}: ${decoded.error.message}`);
      if (decoded.value.host !== host) {
        throw new Error(`${file}: holds host ${decoded.value.host}, not ${host}`);
      }
      return decoded.value;
    },
    async save(snapshot) {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(temporary, encode(snapshot), { mode: 0o600 });
      await rename(temporary, file);
    },
  };
}

/** A baseline kept in memory only: for tests, and for an agent that has no data directory. */
export function memoryBaseline(initial?: HostSnapshot): AgentBaseline & {
  saved: HostSnapshot | undefined;
} {
  const store = {
    saved: initial,
    async load() {
      return store.saved;
    },
    async save(snapshot: HostSnapshot) {
      store.saved = snapshot;
    },
  };
  return store;
}
