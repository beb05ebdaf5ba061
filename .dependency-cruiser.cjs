/*
 * The import rules CI enforces (`npm run depcheck`, run by `pretest`). Type-only imports count:
 * they tie modules together as much as value imports do, so a cycle through `import type` is a
 * cycle.
 *
 * TypeScript 7.0 has no JavaScript API, so swc parses the sources; it keeps type-only imports
 * whatever the options say. `tsPreCompilationDeps` asks for them from tsc too, once a TypeScript
 * with an API is installed; until then dependency-cruiser warns that it found no compatible tsc.
 *
 * `npm run depcheck` names the folders to read: all of the product's, and test/ for its support
 * files. Test files (`*.test.ts`) are left out: nothing imports them, so they can be in no
 * cycle, and they may import anything (dependency-cruiser's swc walker also stops at `using`
 * declarations, which only tests have).
 */

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "A cycle, type-only imports included, means two modules are really one.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-unresolvable",
      comment:
        "Every import of our own files resolves: one that did not would hide its cycles from this check.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true, path: "^\\.\\.?/" },
    },
    {
      name: "gateway-not-to-handlers",
      comment: "The gateway shares policy code through policy/, never through the handlers.",
      severity: "error",
      from: { path: "^gateway/" },
      to: { path: "^handlers/" },
    },
    {
      name: "handlers-not-to-gateway",
      comment: "The handlers and the gateway are separate processes that meet on NATS.",
      severity: "error",
      from: { path: "^handlers/" },
      to: { path: "^gateway/" },
    },
    {
      name: "agent-not-to-handlers-or-gateway",
      comment:
        "The agent runs alone on every host: it meets the handlers and the gateway only on NATS.",
      severity: "error",
      from: { path: "^agent/" },
      to: { path: "^(handlers|gateway)/" },
    },
    {
      name: "contracts-only-to-contracts",
      comment:
        "contracts/ is the wire API: it depends on itself and on libraries, nothing of ours.",
      severity: "error",
      from: { path: "^contracts/" },
      to: { pathNot: "^contracts/|(^|/)node_modules/", dependencyTypesNot: ["core"] },
    },
  ],
  options: {
    exclude: { path: ["^(dist|node_modules)/", "\\.test\\.ts$"] },
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    parser: "swc",
    enhancedResolveOptions: {
      extensions: [".ts", ".d.ts", ".js", ".mjs", ".cjs", ".json"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
  },
};
