#!/usr/bin/env node
// The CLI is compiled by `npm run build` (run automatically by `npm ci` / `npm install`).
import "../dist/cli/main.js";
