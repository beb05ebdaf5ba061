import { describe, expect, it } from "vitest";
import { ConfigError } from "../common/errors.js";
import { loadGatewayConfig } from "./config.js";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadGatewayConfig", () => {
  it("defaults", () => {
    expect(loadGatewayConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      port: 8080,
      host: "0.0.0.0",
      staleAfterHeartbeats: 3,
      downAfterHeartbeats: 12,
    });
  });

  it("reads values and treats empty as unset", () => {
    expect(
      loadGatewayConfig({
        FLEETHEAL_GATEWAY_PORT: "0",
        FLEETHEAL_GATEWAY_HOST: "",
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "2",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "3",
      }),
    ).toMatchObject({ port: 0, host: "0.0.0.0", staleAfterHeartbeats: 2, downAfterHeartbeats: 3 });
  });

  it.each([
    ["http", 'FLEETHEAL_GATEWAY_PORT="http": '],
    ["65536", 'FLEETHEAL_GATEWAY_PORT="65536": must be at most 65535'],
    ["-1", 'FLEETHEAL_GATEWAY_PORT="-1": must be at least 0'],
    ["80.5", 'FLEETHEAL_GATEWAY_PORT="80.5": must be a whole number'],
  ])("port %j is rejected", (port, expected) => {
    expect(
      configError(() => loadGatewayConfig({ FLEETHEAL_GATEWAY_PORT: port })).message,
    ).toContain(expected);
  });

  it.each([
    ["5", "5"],
    ["5", "4"],
    ["20", undefined],
  ])("DOWN_AFTER must exceed STALE_AFTER (stale %s, down %s)", (stale, down) => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_STALE_AFTER_HEARTBEATS: stale,
        ...(down === undefined ? {} : { FLEETHEAL_DOWN_AFTER_HEARTBEATS: down }),
      }),
    );
    expect(error.message).toContain(
      "FLEETHEAL_DOWN_AFTER_HEARTBEATS must be greater than FLEETHEAL_STALE_AFTER_HEARTBEATS",
    );
    expect(error.message).toContain("FLEETHEAL_DOWN_AFTER_HEARTBEATS");
    if (down !== undefined)
      expect(error.message).toContain(`FLEETHEAL_DOWN_AFTER_HEARTBEATS="${down}"`);
  });

  it("reports the ordering problem together with other bad variables", () => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_GATEWAY_PORT: "http",
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "10",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "5",
      }),
    );
    expect(error.message).toContain('FLEETHEAL_GATEWAY_PORT="http": ');
    expect(error.message).toContain(
      "FLEETHEAL_DOWN_AFTER_HEARTBEATS must be greater than FLEETHEAL_STALE_AFTER_HEARTBEATS",
    );
  });

  it("does not add an ordering complaint when one of the two counts is itself invalid", () => {
    const error = configError(() =>
      loadGatewayConfig({
        FLEETHEAL_STALE_AFTER_HEARTBEATS: "abc",
        FLEETHEAL_DOWN_AFTER_HEARTBEATS: "5",
      }),
    );
    expect(error.message).toContain(
      'FLEETHEAL_STALE_AFTER_HEARTBEATS="abc": must be a whole number',
    );
    expect(error.message).not.toContain("must be greater than");
  });
});
