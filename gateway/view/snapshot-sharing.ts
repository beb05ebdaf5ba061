import type { ContainerSnapshot, HostSnapshot } from "../../contracts/index.js";

/*
 * How the fleet view keeps one copy of what repeats: a host's unchanged parts from one snapshot
 * to the next, and strings across the fleet's containers.
 */

/**
 * Replaces every part of `next` that equals the same part of `previous` (the host's snapshot
 * before it) by `previous`'s, in place: containers are matched by id, anything else by its
 * position in the document. `next.containers` becomes `previous.containers` itself when every
 * container is unchanged and in the same order. Containers new to the host have their strings
 * interned in `strings`.
 *
 * A heartbeat repeats almost all of the last snapshot, so after this the decoded copy is
 * garbage that dies in the young generation, and the host's containers stay where they are:
 * under churn the old generation holds the fleet once, not the fleet plus the snapshots
 * replaced since its last full collection.
 */
export function shareUnchanged(
  previous: HostSnapshot,
  next: HostSnapshot,
  strings?: StringPool,
): void {
  const before = previous.containers;
  const after = next.containers;
  let byId: Map<string, ContainerSnapshot> | undefined;
  let allSame = after.length === before.length;
  for (let i = 0; i < after.length; i++) {
    const c = after[i] as ContainerSnapshot;
    // Agents list containers in a stable order, so the same index is almost always the match.
    let match = before[i];
    if (match?.id !== c.id) {
      byId ??= new Map(before.map((b) => [b.id, b]));
      match = byId.get(c.id);
    }
    if (match === undefined) strings?.internAll(c);
    const shared = match === undefined ? c : (share(match, c) as ContainerSnapshot);
    after[i] = shared;
    if (shared !== before[i]) allSame = false;
  }
  shareFields(previous, next, "containers");
  if (allSame) next.containers = before;
}

/**
 * `previous` when `next` equals it (for objects: the same keys in the same order and equal
 * values); otherwise `next`, with each of its parts that equals the same part of `previous`
 * replaced by that part, in place. Equal strings come out as `previous`'s copy.
 */
function share(previous: unknown, next: unknown): unknown {
  if (equal(previous, next)) return previous;
  if (typeof next !== "object" || next === null) return next;
  if (typeof previous !== "object" || previous === null) return next;
  if (Array.isArray(next) !== Array.isArray(previous)) return next;
  shareFields(previous, next);
  return next;
}

/**
 * Whether two decoded JSON values are equal, objects' keys in the same order included. Reads
 * only: most containers in a heartbeat are unchanged, and this settles them without a write.
 */
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  const otherKeys = Object.keys(y);
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (otherKeys[i] !== key || !equal(x[key], y[key])) return false;
  }
  return true;
}

/**
 * Replaces each of `next`'s fields (or elements) by `previous`'s same field when they are
 * equal, and shares the parts of unequal objects the same way, in place. `skip` is left alone.
 */
function shareFields(previous: object, next: object, skip?: string): void {
  const p = previous as Record<string, unknown>;
  const n = next as Record<string, unknown>;
  const keys = Object.keys(n);
  const previousKeys = Object.keys(p);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    // An own "__proto__" (a label may be called that) cannot be assigned without changing the
    // prototype, and a field `previous` lacks has nothing to share.
    if (key === skip || key === "__proto__") continue;
    if (previousKeys[i] !== key && !Object.hasOwn(p, key)) continue;
    const before = p[key];
    const now = n[key];
    // Equal values (strings compare by content): keep the copy that is already old.
    if (before === now) n[key] = before;
    else if (typeof now === "object" && now !== null) n[key] = share(before, now);
  }
}

/**
 * One copy of each string that repeats across the fleet's containers (compose labels, images,
 * paths, network names, health check output). JSON decoding makes a string per occurrence;
 * this keeps the first and drops the others.
 *
 * Bounded, and it never holds a string for long that nothing uses: two generations, the newer
 * one filled until `capacity` and then becoming the older, whose strings that are met again
 * move back into the newer. Strings that recur (the ones worth sharing) keep being met and
 * stay; ones seen once (ids, hashes) age out after two generations.
 */
export class StringPool {
  private current = new Map<string, string>();
  private older = new Map<string, string>();

  constructor(private readonly capacity = 4096) {}

  /** How many strings the pool holds, in both generations. */
  get size(): number {
    return this.current.size + this.older.size;
  }

  has(s: string): boolean {
    return this.current.has(s) || this.older.has(s);
  }

  intern(s: string): string {
    const known = this.current.get(s);
    if (known !== undefined) return known;
    const old = this.older.get(s);
    const kept = old ?? s;
    this.current.set(kept, kept);
    if (this.current.size >= this.capacity) {
      this.older = this.current;
      this.current = new Map();
    }
    return kept;
  }

  /** Interns every string value in `value` (not keys: V8 already keeps one copy of those), in place. */
  internAll(value: unknown): void {
    if (typeof value !== "object" || value === null) return;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (typeof v === "string") value[i] = this.intern(v);
        else this.internAll(v);
      }
      return;
    }
    const o = value as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      const v = o[key];
      if (key === "__proto__") continue;
      if (typeof v === "string") o[key] = this.intern(v);
      else this.internAll(v);
    }
  }
}
