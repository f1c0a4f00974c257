/**
 * Job records of the embedded mode (no REDIS_URL): what the in-process runner claims under a lease, renews, saves
 * progress to, completes or releases with a backoff. Nothing survives a restart and nothing is shared between
 * processes; with Redis, jobs live in BullMQ instead. All times are milliseconds.
 */

/** `queued`: handed off, not yet claimed; `processing`: claimed under a lease; `done`: finished, never re-run. */
export type JobState = 'queued' | 'processing' | 'done';

/** A job as recorded. `payload` and `progress` are JSON written by the pipeline; the records never read them. */
export interface JobRecord {
  id: string;
  state: JobState;
  payload: string;
  /** how many times the job was claimed, this claim included */
  attempts: number;
  progress: string | null;
  /** epoch ms of the hand-off (the retry window counts from it) */
  createdAtMs: number;
}

export type ClaimResult =
  | { status: 'claimed'; job: JobRecord }
  /** finished before; `busy`: another owner holds an unexpired lease; `missing`: unknown or expired (TTL) */
  | { status: 'done' | 'busy' | 'missing' };

export interface NewJob {
  /** unique per message and account, e.g. `kf:<open_kfid>:<user>:<msgid>`; no whitespace */
  id: string;
  payload: string;
}

export interface JobRecords {
  /**
   * Records new jobs. A job whose id exists (in any state) is not touched: this is the dedup. New jobs are
   * `queued` and become due after `leaseMs` unless claimed first.
   * @param ttlMs how long the record (and so the dedup) lives, from hand-off
   * @returns per job, true when it was created now, false when it already existed
   */
  handOff(jobs: NewJob[], leaseMs: number, ttlMs: number): Promise<boolean[]>;
  /** Claims a job that is queued, or processing under an expired lease (a crashed attempt); increments attempts. */
  claim(id: string, owner: string, leaseMs: number): Promise<ClaimResult>;
  /** @returns false when `owner` no longer holds the job (the lease expired and another claim took it) */
  renewJob(id: string, owner: string, leaseMs: number): Promise<boolean>;
  saveProgress(id: string, owner: string, progress: string): Promise<boolean>;
  /** Marks done (kept until its TTL, so the msgid is never processed again). */
  complete(id: string, owner: string): Promise<boolean>;
  /** Gives the job back: queued and due after `delayMs` (0 on graceful shutdown; a backoff after a failure). */
  releaseJob(id: string, owner: string, delayMs?: number): Promise<boolean>;
  /** Ids of jobs not done whose lease (or hand-off grace) has expired, oldest first. */
  dueJobs(limit: number): Promise<string[]>;
  /** Jobs released after a failure and waiting for their backoff (queued, not yet due, started before). */
  delayedCount(): number;
  /** Stops the expiry sweep. */
  close(): void;
}

interface MemJob extends JobRecord {
  owner: string | null;
  /** ms epoch at which a queued/processing job becomes due */
  dueAt: number;
  expiresAt: number;
}

/**
 * @param opts.now clock in ms (tests inject one); defaults to Date.now
 * @param opts.sweepIntervalMs how often expired records are dropped so memory stays bounded (default 60 s)
 */
export function createMemoryJobRecords(opts: { now?: () => number; sweepIntervalMs?: number } = {}): JobRecords {
  const now = opts.now ?? Date.now;
  const jobs = new Map<string, MemJob>();
  const sweep = setInterval(() => {
    const t = now();
    for (const [id, j] of jobs) if (j.expiresAt <= t) jobs.delete(id);
  }, opts.sweepIntervalMs ?? 60_000);
  sweep.unref();

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
    createdAtMs: j.createdAtMs,
  });

  return {
    handOff: async (newJobs, leaseMs, ttlMs) =>
      newJobs.map(({ id, payload }) => {
        if (liveJob(id)) return false;
        const t = now();
        jobs.set(id, {
          id,
          state: 'queued',
          payload,
          attempts: 0,
          progress: null,
          createdAtMs: t,
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
    delayedCount: () => {
      const t = now();
      let n = 0;
      for (const j of jobs.values()) if (j.state === 'queued' && j.attempts > 0 && j.dueAt > t && j.expiresAt > t) n++;
      return n;
    },
    dueJobs: async (limit) => {
      const t = now();
      return [...jobs.values()]
        .filter((j) => j.state !== 'done' && j.dueAt <= t && j.expiresAt > t)
        .sort((a, b) => a.dueAt - b.dueAt)
        .slice(0, limit)
        .map((j) => j.id);
    },
    close: () => clearInterval(sweep),
  };
}
