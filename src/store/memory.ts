import type { Store } from './types.js';

interface Entry {
  value: string;
  /** ms epoch; Infinity = no expiry */
  expiresAt: number;
}

/**
 * The embedded store: the same semantics as the Redis store inside one process. Nothing survives a restart and
 * nothing is shared between processes (docs/operations.md, "Without Redis", says what that means for operators).
 * @param opts.now clock in ms (tests inject one); defaults to Date.now
 * @param opts.sweepIntervalMs how often expired entries are dropped so memory stays bounded (default 60 s)
 */
export function createMemoryStore(opts: { now?: () => number; sweepIntervalMs?: number } = {}): Store {
  const now = opts.now ?? Date.now;
  const kv = new Map<string, Entry>();
  const wanted = new Map<string, Map<string, number>>();

  const sweep = setInterval(() => {
    const t = now();
    for (const [k, e] of kv) if (e.expiresAt <= t) kv.delete(k);
  }, opts.sweepIntervalMs ?? 60_000);
  sweep.unref();

  const read = (key: string): string | null => {
    const e = kv.get(key);
    if (!e) return null;
    if (e.expiresAt <= now()) {
      kv.delete(key);
      return null;
    }
    return e.value;
  };
  const write = (key: string, value: string, ttlMs?: number) => {
    kv.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : now() + ttlMs });
  };
  return {
    kind: 'memory',
    get: async (key) => read(key),
    set: async (key, value, ttlMs) => write(key, value, ttlMs),
    del: async (key) => {
      kv.delete(key);
    },
    delIfEquals: async (key, value) => read(key) === value && kv.delete(key),

    setIfAbsent: async (key, value, ttlMs) => {
      if (read(key) !== null) return false;
      write(key, value, ttlMs);
      return true;
    },
    incr: async (key, ttlMs) => {
      const e = read(key) === null ? null : kv.get(key);
      const n = (e ? Number(e.value) || 0 : 0) + 1;
      if (e) e.value = String(n);
      else write(key, String(n), ttlMs);
      return n;
    },
    acquireLock: async (key, owner, ttlMs) => {
      if (read(key) !== null) return false;
      write(key, owner, ttlMs);
      return true;
    },
    renewLock: async (key, owner, ttlMs) => {
      if (read(key) !== owner) return false;
      write(key, owner, ttlMs);
      return true;
    },
    releaseLock: async (key, owner) => read(key) === owner && kv.delete(key),

    markWanted: async (set, member) => {
      const m = wanted.get(set) ?? new Map<string, number>();
      m.set(member, (m.get(member) ?? 0) + 1);
      wanted.set(set, m);
    },
    wantedGeneration: async (set, member) => wanted.get(set)?.get(member) ?? 0,
    clearWanted: async (set, member, generation) => {
      const m = wanted.get(set);
      if (!m || m.get(member) !== generation) return false;
      m.delete(member);
      return true;
    },
    listWanted: async (set) => [...(wanted.get(set)?.keys() ?? [])],

    ping: async () => undefined,
    close: async () => {
      clearInterval(sweep);
    },
  };
}
