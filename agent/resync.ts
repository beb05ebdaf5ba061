/**
 * Most `resync` re-assertions one reconcile publishes. A host with thousands of unhealthy
 * containers re-asserts them in turns of this many, least recently re-asserted first, so each one
 * is re-asserted at least every ⌈unhealthy / MAX_RESYNC_PER_PASS⌉ reconciles.
 */
export const MAX_RESYNC_PER_PASS = 256;

/**
 * How many re-assertions a reconcile may publish now: at most half of the outbox's free room,
 * and at most {@link MAX_RESYNC_PER_PASS}. Re-assertions alone therefore never fill the outbox:
 * a full outbox drops its oldest event and forces a reconcile, and a reconcile that filled it
 * again would force the next one, for ever. As the outbox fills, the share shrinks to nothing.
 */
export function resyncBudget(outboxDepth: number, outboxCapacity: number): number {
  const free = Math.max(0, outboxCapacity - outboxDepth);
  return Math.min(MAX_RESYNC_PER_PASS, Math.floor(free / 2));
}

/**
 * Which of the containers due for a re-assertion get one in this pass: those re-asserted least
 * recently (never, first), in the order given, up to the budget. Fair under any budget: a
 * container left out now has an older turn than every one chosen, so it comes before them next.
 * Only containers still due are remembered, so the memory is bounded by the unhealthy ones.
 */
export class ResyncRotation {
  private pass = 0;
  /** Per container due in the last pass, the pass of its last re-assertion (absent: never). */
  private lastTurn = new Map<string, number>();

  /** Chooses this pass's re-assertions among `due` (ids, in a stable order). */
  choose(due: readonly string[], budget: number): string[] {
    this.pass++;
    const turns = new Map<string, number>();
    for (const id of due) turns.set(id, this.lastTurn.get(id) ?? 0);
    const chosen = [...due]
      // Array.prototype.sort is stable: equal turns keep the order given.
      .sort((a, b) => (turns.get(a) ?? 0) - (turns.get(b) ?? 0))
      .slice(0, Math.max(0, budget));
    for (const id of chosen) turns.set(id, this.pass);
    this.lastTurn = turns;
    return chosen;
  }
}
