import { Agent } from "node:http";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

// The adapter itself is exercised against a real dockerd by the integration tests (test/agent-*).
// These check what it loads, which a later dockerode or docker-modem could change unnoticed.

const require = createRequire(import.meta.url);
const UNUSED = /[\\/]node_modules[\\/](@grpc|protobufjs|ssh2)[\\/]/;

function loaded(pattern: RegExp): string[] {
  return Object.keys(require.cache).filter((file) => pattern.test(file));
}

describe("dockerode engine", () => {
  it("loads dockerode without the BuildKit session's gRPC stack or docker-modem's ssh2", async () => {
    const { createDockerodeEngine } = await import("./dockerode-engine.js");
    createDockerodeEngine();
    expect(loaded(/[\\/]node_modules[\\/]dockerode[\\/]/)).not.toEqual([]);
    expect(loaded(UNUSED)).toEqual([]);
  });

  it("loads ssh2 when an ssh:// connection is first made, and hands over to it", async () => {
    await import("./dockerode-engine.js");
    const fromDockerode = createRequire(require.resolve("dockerode"));
    const sshFile = createRequire(fromDockerode.resolve("docker-modem")).resolve("./ssh");
    const ssh = require(sshFile) as (options: { host: string; port: number }) => Agent;
    // docker-modem's ssh transport returns an HTTP agent that dials on the first request.
    const agent = ssh({ host: "127.0.0.1", port: 1 });
    expect(agent).toBeInstanceOf(Agent);
    expect(loaded(/[\\/]node_modules[\\/]ssh2[\\/]/)).not.toEqual([]);
    // From then on the module cache holds the real file.
    expect(require(sshFile)).not.toBe(ssh);
    agent.destroy();
  });
});
