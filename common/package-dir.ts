import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The directory fleetheal runs from, whatever it is (a checkout, an installed npm package, the
 * image's /app): the one that holds `bin/fleetheal.js` and, where they are shipped, `docs/` and
 * `gateway/dashboard/`. This file is `common/` in a checkout and `dist/common/` once compiled.
 */
export function packageDir(): string {
  const [source, compiled] = ["../", "../../"].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  ) as [string, string];
  return existsSync(join(source, "bin", "fleetheal.js")) ? source : compiled;
}
