// The way into a test engine's network namespace (dockerd.ts, `netns`): started inside the
// namespace, it listens on a unix socket, which lives on the shared filesystem and so is reachable
// from the test's own network namespace, and connects each client to the TCP address it asks for,
// as seen from inside. Nothing crosses the host's network stack or its firewall.
//
// Protocol: the client sends one line `<host> <port>\n`; the relay answers `ok\n` once connected
// and then copies bytes both ways, or closes the connection if the address cannot be reached.
//
//   node netns-relay.mjs <socket path>

import { rmSync } from "node:fs";
import net from "node:net";

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write("usage: node netns-relay.mjs <socket path>\n");
  process.exit(2);
}
rmSync(socketPath, { force: true });

const MAX_HEADER = 512;

const server = net.createServer((client) => {
  client.on("error", () => client.destroy());
  let header = Buffer.alloc(0);
  /** @param {Buffer} chunk */
  const onData = (chunk) => {
    header = Buffer.concat([header, chunk]);
    const end = header.indexOf(10);
    if (end < 0) {
      if (header.length > MAX_HEADER) client.destroy();
      return;
    }
    client.pause();
    client.off("data", onData);
    const [host, port] = header.subarray(0, end).toString("utf8").trim().split(" ");
    const rest = header.subarray(end + 1);
    const upstream = net.createConnection({ host, port: Number(port) });
    upstream.once("connect", () => {
      client.write("ok\n");
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    // pipe() carries an end from either side to the other; an upstream error, or the client
    // going away, ends both.
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on("error", close);
    client.on("close", () => upstream.destroy());
  };
  client.on("data", onData);
});

server.listen(socketPath, () => process.stdout.write("listening\n"));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  });
}
