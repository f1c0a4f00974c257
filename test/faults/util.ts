/** Small helpers of the fault suite: the result row, a bounded pool, a seeded random source. */

/** One scenario's row of the table, plus what went wrong (failures) and what is worth knowing (notes). */
export interface Result {
  key: string;
  label: string;
  messagesIn: number;
  answered: number;
  duplicates: number;
  lost: number;
  seconds: number;
  failures: string[];
  notes: string[];
}

/** Runs `fn` over `items` with at most `n` at once. */
export async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** A deterministic PRNG (mulberry32) so a failing run can be replayed with FAULTS_SEED. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
