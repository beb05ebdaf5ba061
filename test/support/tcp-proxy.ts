// A TCP proxy on loopback that a test can cut and restore, to put one client (an agent) out of
// reach of a server (nats-server) while everything else still talks to the server directly.

import net from "node:net";

export interface TcpProxy extends AsyncDisposable {
  /** `127.0.0.1` port the proxy listens on; stable for its whole life. */
  readonly port: number;
  /** `nats://127.0.0.1:<port>`, for clients that should go through the proxy. */
  readonly url: string;
  /** True between cut() and restore(). */
  readonly isCut: boolean;
  /** Connections accepted while cut, and so dropped or held. */
  readonly refused: number;
  /** Connections forwarded to the target since the proxy started. */
  readonly forwarded: number;
  /**
   * Destroys every current connection (both sides) and, until restore(), drops new ones: with
   * "refuse" they are closed at once, as a firewall REJECT; with "blackhole" they are accepted and
   * held without a byte forwarded, as a DROP (they are destroyed on restore).
   */
  cut(mode?: "refuse" | "blackhole"): void;
  /** Forwards new connections again. */
  restore(): void;
}

/** Starts a proxy on 127.0.0.1 (random port) that forwards every connection to `target`. */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? "127.0.0.1";
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const held = new Set<net.Socket>();
  let mode: "refuse" | "blackhole" | undefined;
  let refused = 0;
  let forwarded = 0;

  const server = net.createServer((client) => {
    client.on("error", () => {});
    if (mode === "refuse") {
      refused++;
      client.destroy();
      return;
    }
    if (mode === "blackhole") {
      refused++;
      held.add(client);
      client.once("close", () => held.delete(client));
      // Read and discard, so the client's writes do not pile up in our buffers.
      client.resume();
      return;
    }
    forwarded++;
    const upstream = net.connect({ host, port: target.port });
    upstream.on("error", () => {});
    const pair = { client, upstream };
    pairs.add(pair);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once("close", close);
    upstream.once("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on("error", () => {});

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    get isCut() {
      return mode !== undefined;
    },
    get refused() {
      return refused;
    },
    get forwarded() {
      return forwarded;
    },
    cut(how = "refuse") {
      mode = how;
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      mode = undefined;
      for (const s of [...held]) s.destroy();
      held.clear();
    },
    async [Symbol.asyncDispose]() {
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      for (const s of [...held]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
