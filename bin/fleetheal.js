#!/usr/bin/env node
// The CLI is compiled by `npm run build` (in a checkout, `npm ci` runs it; the npm package and
// the image ship it compiled).
import { setFlagsFromString } from "node:v8";

// The agent runs on every host and should stay small (docs/AGENT.md, "Memory"). Loading its code
// makes V8 double its young generation from 1 MB up to 16 MB, and V8 hands that memory back only
// after several idle seconds, so about 15 MB of the agent's resident memory is young generation
// that an idle agent does not need. `--max-semi-space-size` would cap it, but V8 reads that only
// when the process starts, and `fleetheal agent`, the container image and the systemd unit all
// start here, as plain `node bin/fleetheal.js`. The growth factor is read each time the young
// generation would grow, so setting it to 1 here, before anything is loaded, keeps the young
// generation at its initial size. It applies to the roles an agent runs in (`agent`, and `up`,
// which includes one); the gateway and the handlers keep V8's defaults. An operator who sets
// either V8 option in NODE_OPTIONS or on the command line keeps their own.
const role = process.argv[2];
const own = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) =>
  /^--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/.test(arg),
);
if ((role === "agent" || role === "up") && !own) {
  setFlagsFromString("--semi-space-growth-factor=1");
}

await import("../dist/cli/main.js");
