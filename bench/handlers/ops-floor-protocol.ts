// How bench/handler-throughput.ts and its ops floor children (bench/handlers/ops-floor.ts) talk.

/** The floor child's orders, in its environment: it needs them before it can listen. */
export const FLOOR_ORDER_ENV = "FLEETHEAL_BENCH_FLOOR_ORDER";

/** One consumer as the runtime binds a handler: its concurrency, and twice that per pull (≥ 16). */
export interface FloorConsumer {
  durable: string;
  concurrency: number;
  maxMessages: number;
  /** How long one pull waits. */
  expiresMs: number;
}

export interface FloorOrder {
  url: string;
  name: string;
  /** The heal handler's name, as the `actor` of its records says. */
  healName: string;
  heal: FloorConsumer;
  dependents: FloorConsumer;
  /** The heal handler's restart deadline for a container without a stop-timeout label. */
  commandTimeoutMs: number;
}

export type ToFloor = { type: "stop" };
export type FromFloor =
  | { type: "ready" }
  | { type: "failed"; error: string }
  | { type: "stopped"; heal: number; dependents: number };
