/*
 * What a recreated container is made from: the old container's inspect, turned into the body of
 * a `POST /containers/create` and the networks to connect before it starts. Pure, so that every
 * rule here is tested without Docker (recreate-spec.test.ts); agent/dockerode-recreate.ts runs it.
 */

/** The parts of `docker inspect <container>` a recreate reads. */
export interface InspectedContainer {
  Id: string;
  Name: string;
  Config: Record<string, unknown> & { Image: string; Hostname?: string };
  HostConfig: Record<string, unknown> & {
    NetworkMode?: string;
    Binds?: string[] | null;
    Mounts?: HostMount[] | null;
    Links?: string[] | null;
  };
  NetworkSettings?: { Networks?: Record<string, Endpoint> | null };
  Mounts?: InspectedMount[];
}

/** An entry of HostConfig.Mounts (`--mount`). */
export interface HostMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  [key: string]: unknown;
}

/** An entry of the inspect's Mounts: what the container has mounted, resolved. */
export interface InspectedMount {
  Type?: string;
  Name?: string;
  Destination: string;
  RW?: boolean;
}

/** A container's endpoint on one network, as inspect shows it. */
export interface Endpoint {
  IPAMConfig?: unknown;
  Links?: string[] | null;
  Aliases?: string[] | null;
  DriverOpts?: Record<string, string> | null;
  [key: string]: unknown;
}

/** The image's own defaults (`docker image inspect`'s Config), which a new image may change. */
export type ImageConfig = Record<string, unknown>;

/** The new container: its create body (name and image included) and the other networks. */
export interface RecreateSpec {
  name: string;
  /** The old container's name while the new one is made. */
  oldName: string;
  create: Record<string, unknown> & { name: string; Image: string };
  connect: { network: string; endpoint: Endpoint }[];
}

/** Docker allows any length of name; this keeps the parked name readable and bounded. */
const MAX_NAME = 128;

/**
 * The create body for a new container like `old`. It keeps the configuration that was asked
 * for, and leaves out what Docker derived and would refuse or get wrong the second time:
 * - the image's own defaults (Env entries, labels, Cmd/Entrypoint, ...) when `image` is the old
 *   image's config, so that a pulled image's new defaults apply, as `docker run` would do;
 * - a Hostname that is the old id's prefix (Docker's default), and any Hostname, MAC or exposed
 *   port in a `container:` network mode, which Docker refuses there;
 * - the ContainerIDFile (its file exists, so the create would fail) and Docker's form of links;
 * - the endpoint ids, addresses and MAC of the old endpoints, and its id among the aliases.
 * Every volume stays: an anonymous one is mounted again by its name at its destination, so the
 * new container sees the old one's data instead of a fresh empty volume.
 */
export function recreateSpec(
  old: InspectedContainer,
  options: { networkParent?: string; image?: ImageConfig },
): RecreateSpec {
  const name = old.Name.replace(/^\//, "");
  const shortId = old.Id.slice(0, 12);
  const suffix = `-fleetheal-old-${shortId}`;
  const hostConfig: Record<string, unknown> & InspectedContainer["HostConfig"] = {
    ...old.HostConfig,
  };
  if (options.networkParent !== undefined) {
    hostConfig.NetworkMode = `container:${options.networkParent}`;
  }
  const mode = hostConfig.NetworkMode ?? "";
  const sharesNetwork = mode.startsWith("container:");
  delete hostConfig.ContainerIDFile;
  if (hostConfig.Links) hostConfig.Links = hostConfig.Links.map(createLink);
  keepVolumes(hostConfig, old.Mounts ?? []);

  const config = withoutImageDefaults(old.Config, options.image);
  if (config.Hostname === shortId || sharesNetwork) delete config.Hostname;
  if (sharesNetwork || mode === "host") delete config.MacAddress;
  if (sharesNetwork) delete config.ExposedPorts;

  const endpoints = sharesNetwork ? [] : Object.entries(old.NetworkSettings?.Networks ?? {});
  const primaryName = mode === "default" ? "bridge" : mode;
  const primary = endpoints.find(([n]) => n === primaryName) ?? endpoints[0];
  const create: RecreateSpec["create"] = {
    ...config,
    name,
    Image: old.Config.Image,
    HostConfig: hostConfig,
    ...(primary
      ? { NetworkingConfig: { EndpointsConfig: { [primary[0]]: endpoint(primary[1], shortId) } } }
      : {}),
  };
  return {
    name,
    oldName: `${name.slice(0, MAX_NAME - suffix.length)}${suffix}`,
    create,
    connect: endpoints
      .filter((e) => e !== primary)
      .map(([network, e]) => ({ network, endpoint: endpoint(e, shortId) })),
  };
}

/** What an endpoint was asked for: its static addresses, links, aliases and driver options. */
function endpoint(e: Endpoint, shortId: string): Endpoint {
  const aliases = (e.Aliases ?? []).filter((a) => a !== shortId);
  return {
    ...(e.IPAMConfig ? { IPAMConfig: e.IPAMConfig } : {}),
    ...(e.Links?.length ? { Links: e.Links } : {}),
    ...(aliases.length ? { Aliases: aliases } : {}),
    ...(e.DriverOpts ? { DriverOpts: e.DriverOpts } : {}),
  };
}

/** Inspect shows a link as `/target:/container/alias`; create takes `target:alias`. */
function createLink(link: string): string {
  const m = /^\/([^:]+):\/[^/]+\/(.+)$/.exec(link);
  return m ? `${m[1]}:${m[2]}` : link;
}

/**
 * Mounts every volume of the old container on the new one under its name: an anonymous volume
 * (a `-v /dst` bind, an image VOLUME, a `--mount type=volume` without source) would otherwise
 * be a new empty one. Named volumes and bind mounts are in Binds and Mounts already.
 */
function keepVolumes(hostConfig: InspectedContainer["HostConfig"], mounts: InspectedMount[]) {
  const named = new Map<string, InspectedMount>();
  for (const m of mounts) if (m.Type === "volume" && m.Name) named.set(m.Destination, m);
  const covered = new Set<string>();
  const binds = (hostConfig.Binds ?? []).filter((bind) => {
    const parts = bind.split(":");
    if (parts.length < 2) return !named.has(parts[0] as string);
    covered.add(parts[1] as string);
    return true;
  });
  const hostMounts = (hostConfig.Mounts ?? []).map((m) => {
    const volume = m.Target === undefined ? undefined : named.get(m.Target);
    if (m.Target !== undefined) covered.add(m.Target);
    return m.Type === "volume" && !m.Source && volume ? { ...m, Source: volume.Name } : m;
  });
  for (const [destination, m] of named) {
    if (covered.has(destination)) continue;
    hostMounts.push({ Type: "volume", Source: m.Name, Target: destination, ReadOnly: !m.RW });
  }
  if (hostConfig.Binds) hostConfig.Binds = binds;
  if (hostMounts.length > 0) hostConfig.Mounts = hostMounts;
}

/**
 * The container's Config without the values it got from its image, which the image would give
 * it again: the new image's defaults then apply (Docker merges them in at create).
 */
function withoutImageDefaults(
  config: InspectedContainer["Config"],
  image: ImageConfig | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (!image) return out;
  const same = (key: string) =>
    JSON.stringify(out[key] ?? null) === JSON.stringify(image[key] ?? null);
  if (Array.isArray(out.Env) && Array.isArray(image.Env)) {
    const defaults = new Set(image.Env as string[]);
    out.Env = (out.Env as string[]).filter((e) => !defaults.has(e));
  }
  for (const key of ["Labels", "ExposedPorts", "Volumes"]) {
    const own = out[key] as Record<string, unknown> | null | undefined;
    const defaults = image[key] as Record<string, unknown> | null | undefined;
    if (!own || !defaults) continue;
    out[key] = Object.fromEntries(
      Object.entries(own).filter(
        ([k, v]) => !(k in defaults) || JSON.stringify(defaults[k]) !== JSON.stringify(v),
      ),
    );
  }
  // As `docker run`: an Entrypoint of one's own clears the image's Cmd.
  if (same("Entrypoint")) {
    delete out.Entrypoint;
    if (same("Cmd")) delete out.Cmd;
  }
  for (const key of ["WorkingDir", "User", "Healthcheck", "StopSignal", "Shell", "OnBuild"]) {
    if (out[key] !== undefined && same(key)) delete out[key];
  }
  return out;
}
