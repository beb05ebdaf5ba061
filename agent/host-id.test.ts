import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../common/errors.js";
import { loadAgentConfig } from "./config.js";
import { withHostIdOfEngine } from "./host-id.js";

const config = loadAgentConfig({ FLEETHEAL_HOST_ID: "from-hostname" });

describe("withHostIdOfEngine", () => {
  it("in a container without FLEETHEAL_HOST_ID: the Docker engine's name, as a host id", async () => {
    const engineName = vi.fn(async () => "web-1.example.com");
    const got = await withHostIdOfEngine(config, {}, { inContainer: () => true, engineName });
    expect(got).toEqual({ ...config, hostId: "web-1-example-com" });
  });

  it("keeps the id otherwise: FLEETHEAL_HOST_ID set, or not in a container", async () => {
    const engineName = vi.fn(async () => "web-1");
    const set = { FLEETHEAL_HOST_ID: "from-hostname" };
    expect(await withHostIdOfEngine(config, set, { inContainer: () => true, engineName })).toBe(
      config,
    );
    expect(await withHostIdOfEngine(config, {}, { inContainer: () => false, engineName })).toBe(
      config,
    );
    // An empty variable is unset, as everywhere else.
    const empty = await withHostIdOfEngine(
      config,
      { FLEETHEAL_HOST_ID: "" },
      { inContainer: () => true, engineName },
    );
    expect(empty.hostId).toBe("web-1");
    expect(engineName).toHaveBeenCalledOnce();
  });

  it("keeps the host a join token names", async () => {
    const engineName = vi.fn(async () => "web-1");
    for (const env of [{ FLEETHEAL_JOIN_TOKEN: "FHJ1-x" }, { FLEETHEAL_JOIN_TOKEN_FILE: "/t" }]) {
      expect(await withHostIdOfEngine(config, env, { inContainer: () => true, engineName })).toBe(
        config,
      );
    }
    expect(engineName).not.toHaveBeenCalled();
  });

  it("says how to fix it when Docker cannot be asked", async () => {
    const engineName = async () => {
      throw new Error("connect EACCES /var/run/docker.sock");
    };
    const failed = withHostIdOfEngine(config, {}, { inContainer: () => true, engineName });
    await expect(failed).rejects.toThrow(ConfigError);
    await expect(failed).rejects.toThrow(/EACCES.*FLEETHEAL_HOST_ID.*--group-add/);
  });
});
