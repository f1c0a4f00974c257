import type { ClaimResult, JobRecord, NewJob, Store } from './types.js';

interface Entry {
  value: string;
  /** ms epoch; Infinity = no expiry */
  expiresAt: number;
}

interface MemJob extends JobRecord {
  owner: string | null;
  /** ms epoch at which a queued/processing job becomes due for anyone */
  dueAt: number;
  expiresAt: number;
}

/**
 * The embedded store: the same semantics as the Redis store inside one process. Nothing survives a restart and
 * nothing is shared between processes (README says what that means for operators).
 * @param opts.now clock in ms (tests inject one); defaults to Date.now
 * @param opts.sweepIntervalMs how often expired entries are dropped so memory stays bounded (default 60 s)
 */
export function createMemoryStore(opts: { now?: () => number; sweepIntervalMs?: number } = {}): Store {
  const now = opts.now ?? Date.now;
  const kv = new Map<string, Entry>();
  const wanted = new Map<string, Map<string, number>>();
  const jobs = new Map<string, MemJob>();

  const sweep = setInterval(() => {
    const t = now();
    for (const [k, e] of kv) if (e.expiresAt <= t) kv.delete(k);
    for (const [id, j] of jobs) if (j.expiresAt <= t) jobs.delete(id);
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
  const liveJob = (id: string): MemJob | null => {
    const j = jobs.get(id);
    if (!j) return null;
    if (j.expiresAt <= now()) {
      jobs.delete(id);
      return null;
    }
    return j;
  };
  const owned = (id: string, owner: string): MemJob | null => {
    const j = liveJob(id);
    return j && j.state === 'processing' && j.owner === owner ? j : null;
  };
  const snapshot = (j: MemJob): JobRecord => ({
    id: j.id,
    state: j.state,
    payload: j.payload,
    attempts: j.attempts,
    progress: j.progress,
  });

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

    handOff: async (newJobs: NewJob[], leaseMs, ttlMs) =>
      newJobs.map(({ id, payload }) => {
        if (liveJob(id)) return false;
        const t = now();
        jobs.set(id, {
          id,
          state: 'queued',
          payload,
          attempts: 0,
          progress: null,
          owner: null,
          dueAt: t + leaseMs,
          expiresAt: t + ttlMs,
        });
        return true;
      }),
    claim: async (id, owner, leaseMs): Promise<ClaimResult> => {
      const j = liveJob(id);
      if (!j) return { status: 'missing' };
      if (j.state === 'done') return { status: 'done' };
      const t = now();
      if (j.state === 'processing' && j.owner !== owner && j.dueAt > t) return { status: 'busy' };
      j.state = 'processing';
      j.owner = owner;
      j.dueAt = t + leaseMs;
      j.attempts += 1;
      return { status: 'claimed', job: snapshot(j) };
    },
    renewJob: async (id, owner, leaseMs) => {
      const j = owned(id, owner);
      if (j) j.dueAt = now() + leaseMs;
      return j !== null;
    },
    saveProgress: async (id, owner, progress) => {
      const j = owned(id, owner);
      if (j) j.progress = progress;
      return j !== null;
    },
    complete: async (id, owner) => {
      const j = owned(id, owner);
      if (!j) return false;
      j.state = 'done';
      j.owner = null;
      // Keep only what dedup needs; the payload may hold a customer's text.
      j.payload = '';
      j.progress = null;
      return true;
    },
    releaseJob: async (id, owner, delayMs = 0) => {
      const j = owned(id, owner);
      if (!j) return false;
      j.state = 'queued';
      j.owner = null;
      j.dueAt = now() + delayMs;
      return true;
    },
    dueJobs: async (limit) => {
      const t = now();
      return [...jobs.values()]
        .filter((j) => j.state !== 'done' && j.dueAt <= t && j.expiresAt > t)
        .sort((a, b) => a.dueAt - b.dueAt)
        .slice(0, limit)
        .map((j) => j.id);
    },

    ping: async () => undefined,
    close: async () => {
      clearInterval(sweep);
    },
  };
}
