// The reference, a child program of bench/gateway.ts: a plain Fastify that answers the gateway's
// exact bodies, the floor a route of constant bytes sets on the same machine.

import { runChild } from "../runner/report.js";
import type { ToChild } from "./protocol.js";
import { listen, send, serveParent, settledMemory, timeInject } from "./server-child.js";

async function serveReference(): Promise<void> {
  // Asks for the bodies only once it listens for them, so the message cannot be missed.
  const bodies = new Promise<ToChild>((resolve) => process.once("message", resolve));
  send({ type: "hello" });
  const { default: Fastify } = await import("fastify");
  const m = await bodies;
  if (m.type !== "bodies") throw new Error(`reference: expected the bodies, got ${m.type}`);
  const app = Fastify({ logger: false });
  for (const { path: route, body } of m.routes) {
    // A Buffer, encoded once: the fastest a constant route can answer, so the reference is a
    // floor the gateway cannot beat by sending bytes where the reference sends a string.
    const bytes = Buffer.from(body, "utf8");
    app.get(route, (_request, reply) => {
      reply.type("application/json; charset=utf-8").send(bytes);
    });
  }
  await app.ready();
  const memoryLoaded = settledMemory();
  const port = await listen(app);
  serveParent(app, async () => ({ inject: await timeInject(app) }));
  send({ type: "ready", port, info: { memoryLoaded } });
}

runChild(serveReference);
