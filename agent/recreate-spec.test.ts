import { describe, expect, it } from "vitest";
import { type InspectedContainer, recreateSpec } from "./recreate-spec.js";

const ID = "0123456789abcdef".repeat(4);
const PARENT = "ab".repeat(32);

function inspected(patch: Partial<InspectedContainer> = {}): InspectedContainer {
  return {
    Id: ID,
    Name: "/web",
    Config: {
      Image: "registry.example:5000/web:1",
      Hostname: ID.slice(0, 12),
      Env: ["PATH=/bin", "MODE=prod"],
      Cmd: ["serve"],
      Labels: { autoheal: "true", "org.opencontainers.image.version": "1" },
    },
    HostConfig: { NetworkMode: "appnet", RestartPolicy: { Name: "always" } },
    NetworkSettings: {
      Networks: {
        appnet: {
          Aliases: ["web", ID.slice(0, 12)],
          NetworkID: "n1",
          EndpointID: "e1",
          IPAddress: "10.0.0.5",
          MacAddress: "02:42:0a:00:00:05",
          IPAMConfig: { IPv4Address: "10.0.0.5" },
        },
        backend: { Aliases: ["api"], EndpointID: "e2", Links: ["db:db"] },
      },
    },
    Mounts: [],
    ...patch,
  };
}

describe("recreateSpec", () => {
  it("makes the same container under the same name, and parks the old one under a bounded name", () => {
    const spec = recreateSpec(inspected(), {});
    expect(spec.name).toBe("web");
    expect(spec.oldName).toBe(`web-fleetheal-old-${ID.slice(0, 12)}`);
    expect(spec.create).toMatchObject({
      name: "web",
      Image: "registry.example:5000/web:1",
      Env: ["PATH=/bin", "MODE=prod"],
      Cmd: ["serve"],
      Labels: { autoheal: "true", "org.opencontainers.image.version": "1" },
      HostConfig: { NetworkMode: "appnet", RestartPolicy: { Name: "always" } },
    });
    // Docker's default hostname is the old id's prefix: the new one gets its own.
    expect(spec.create).not.toHaveProperty("Hostname");
    const long = recreateSpec(inspected({ Name: `/${"n".repeat(300)}` }), {});
    expect(long.oldName).toHaveLength(128);
    expect(long.oldName).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
    expect(long.name).toBe("n".repeat(300));
  });

  it("keeps a hostname of one's own", () => {
    const spec = recreateSpec(
      inspected({ Config: { Image: "web:1", Hostname: "web.internal" } }),
      {},
    );
    expect(spec.create.Hostname).toBe("web.internal");
  });

  it("joins the first network at create and connects the others, without the old endpoint's ids", () => {
    const spec = recreateSpec(inspected(), {});
    expect(spec.create.NetworkingConfig).toEqual({
      EndpointsConfig: {
        appnet: { Aliases: ["web"], IPAMConfig: { IPv4Address: "10.0.0.5" } },
      },
    });
    expect(spec.connect).toEqual([
      { network: "backend", endpoint: { Aliases: ["api"], Links: ["db:db"] } },
    ]);
    const bridged = recreateSpec(
      inspected({
        HostConfig: { NetworkMode: "default" },
        NetworkSettings: { Networks: { other: {}, bridge: {} } },
      }),
      {},
    );
    expect(bridged.create.NetworkingConfig).toEqual({ EndpointsConfig: { bridge: {} } });
    expect(bridged.connect).toEqual([{ network: "other", endpoint: {} }]);
  });

  it("moves a network child to its new parent, without what Docker refuses in that mode", () => {
    const child = inspected({
      Config: {
        Image: "vpn-client:1",
        Hostname: "gluetun-host",
        MacAddress: "02:42:ac:11:00:02",
        ExposedPorts: { "80/tcp": {} },
      },
      HostConfig: { NetworkMode: "container:0123456789ab" },
      NetworkSettings: { Networks: {} },
    });
    const moved = recreateSpec(child, { networkParent: PARENT });
    expect(moved.create.HostConfig).toMatchObject({ NetworkMode: `container:${PARENT}` });
    expect(moved.create).not.toHaveProperty("Hostname");
    expect(moved.create).not.toHaveProperty("MacAddress");
    expect(moved.create).not.toHaveProperty("ExposedPorts");
    expect(moved.create).not.toHaveProperty("NetworkingConfig");
    expect(moved.connect).toEqual([]);
    const same = recreateSpec(child, {});
    expect(same.create.HostConfig).toMatchObject({ NetworkMode: "container:0123456789ab" });
  });

  it("mounts anonymous volumes again by name, and leaves named volumes and binds as they were", () => {
    const spec = recreateSpec(
      inspected({
        HostConfig: {
          NetworkMode: "none",
          Binds: ["data:/data:rw", "/srv/conf:/conf:ro", "/scratch"],
          Mounts: [
            { Type: "volume", Target: "/cache" },
            { Type: "bind", Source: "/srv/logs", Target: "/logs" },
          ],
        },
        Mounts: [
          { Type: "volume", Name: "data", Destination: "/data", RW: true },
          { Type: "bind", Destination: "/conf", RW: false },
          { Type: "volume", Name: "anon-scratch", Destination: "/scratch", RW: true },
          { Type: "volume", Name: "anon-cache", Destination: "/cache", RW: true },
          { Type: "bind", Destination: "/logs", RW: true },
          { Type: "volume", Name: "anon-image", Destination: "/var/lib/app", RW: false },
        ],
      }),
      {},
    );
    const hostConfig = spec.create.HostConfig as Record<string, unknown>;
    expect(hostConfig.Binds).toEqual(["data:/data:rw", "/srv/conf:/conf:ro"]);
    expect(hostConfig.Mounts).toEqual([
      { Type: "volume", Source: "anon-cache", Target: "/cache" },
      { Type: "bind", Source: "/srv/logs", Target: "/logs" },
      { Type: "volume", Source: "anon-scratch", Target: "/scratch", ReadOnly: false },
      { Type: "volume", Source: "anon-image", Target: "/var/lib/app", ReadOnly: true },
    ]);
  });

  it("drops what cannot be used twice: the container id file, and Docker's form of links", () => {
    const spec = recreateSpec(
      inspected({
        HostConfig: {
          NetworkMode: "bridge",
          ContainerIDFile: "/run/web.cid",
          Links: ["/db:/web/database", "cache:cache"],
        },
      }),
      {},
    );
    expect(spec.create.HostConfig).not.toHaveProperty("ContainerIDFile");
    expect((spec.create.HostConfig as { Links: string[] }).Links).toEqual([
      "db:database",
      "cache:cache",
    ]);
  });

  it("leaves out the old image's defaults, so that a pulled image's own apply", () => {
    const spec = recreateSpec(inspected(), {
      image: {
        Env: ["PATH=/bin"],
        Cmd: ["serve"],
        Entrypoint: null,
        Labels: { "org.opencontainers.image.version": "1" },
        WorkingDir: "",
      },
    });
    expect(spec.create.Env).toEqual(["MODE=prod"]);
    expect(spec.create.Labels).toEqual({ autoheal: "true" });
    expect(spec.create).not.toHaveProperty("Cmd");
    const ownEntrypoint = recreateSpec(
      inspected({
        Config: { Image: "web:1", Entrypoint: ["/bin/sh", "-c"], Cmd: ["serve"] },
      }),
      { image: { Entrypoint: ["/init"], Cmd: ["serve"] } },
    );
    // An entrypoint of one's own keeps the Cmd given with it.
    expect(ownEntrypoint.create).toMatchObject({ Entrypoint: ["/bin/sh", "-c"], Cmd: ["serve"] });
  });
});
