import { runCli } from "./process-runner.js";

// Only the command that runs is loaded, and a role loads its code, its configuration schema
// included, only once started (cli/commands/index.ts): an agent on every host should not carry
// the gateway's HTTP stack, the handlers or their settings in memory. What is loaded at start
// also sets how far V8's young generation grows, and with it the agent's resident memory
// (docs/AGENT.md, "Memory").
void runCli(process.argv.slice(2));
