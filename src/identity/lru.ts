/**
 * A small LRU map with an age limit, on a Map's insertion order (a hit moves the entry to the end). The age limit
 * bounds how long another process's erasure or a restart-era value can be served from here.
 */

/** The cache. */
export interface Lru<V> {
  /** the value, unless absent or older than `maxAgeMs` */
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): void;
  /** Deletes every entry whose value satisfies `pred` (erasure: all identities of one customer). */
  deleteWhere(pred: (value: V) => boolean): void;
  readonly size: number;
}

/**
 * @param max entries kept (the least recently used go first)
 * @param maxAgeMs ms an entry is served after it was set
 * @param now clock, epoch ms
 */
export function createLru<V>(max: number, maxAgeMs: number, now: () => number = Date.now): Lru<V> {
  const map = new Map<string, { value: V; at: number }>();
  return {
    get(key) {
      const e = map.get(key);
      if (!e) return undefined;
      map.delete(key);
      if (now() - e.at > maxAgeMs) return undefined;
      map.set(key, e);
      return e.value;
    },
    set(key, value) {
      map.delete(key);
      map.set(key, { value, at: now() });
      if (map.size > max) map.delete(map.keys().next().value!);
    },
    delete: (key) => void map.delete(key),
    deleteWhere(pred) {
      for (const [k, e] of map) if (pred(e.value)) map.delete(k);
    },
    get size() {
      return map.size;
    },
  };
}
