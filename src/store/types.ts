/**
 * The one storage interface of the bridge. Two implementations keep the same semantics: Redis (shared by every
 * process; survives restarts) and in-process memory (the embedded default when REDIS_URL is unset; nothing
 * survives a restart and nothing is shared). Keys passed in are built by `store/keys.ts`; implementations add
 * their own prefix. All times are milliseconds.
 */

/** `queued`: handed off, not yet claimed; `processing`: claimed under a lease; `done`: finished, never re-run. */
export type JobState = 'queued' | 'processing' | 'done';

/** A durable job as stored. `payload` and `progress` are JSON written by the pipeline; the store never reads them. */
export interface JobRecord {
  id: string;
  state: JobState;
  payload: string;
  /** how many times the job was claimed, this claim included */
  attempts: number;
  progress: string | null;
}

export type ClaimResult =
  | { status: 'claimed'; job: JobRecord }
  /** finished before; `busy`: another owner holds an unexpired lease; `missing`: unknown or expired (TTL) */
  | { status: 'done' | 'busy' | 'missing' };

export interface NewJob {
  /** unique per message and account, e.g. `kf:<open_kfid>:<msgid>`; no whitespace */
  id: string;
  payload: string;
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  get(key: string): Promise<string | null>;
  /** @param ttlMs expiry in ms; omitted = no expiry */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  del(key: string): Promise<void>;
  /** Deletes `key` only while it still holds `value` (atomic). @returns whether it was deleted */
  delIfEquals(key: string, value: string): Promise<boolean>;

  /**
   * Writes `value` only when `key` holds nothing (atomic, expiry set in the same step): first writer wins.
   * @returns whether this call wrote it
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Adds 1 (a missing key counts as 0); the expiry is set when the key is created. @returns the new value */
  incr(key: string, ttlMs: number): Promise<number>;

  /** Atomic set-if-absent with expiry (never SET NX then EXPIRE). @returns whether `owner` now holds the lock */
  acquireLock(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock only if `owner` still holds it. */
  renewLock(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases only if `owner` still holds it (atomic compare-and-delete). */
  releaseLock(key: string, owner: string): Promise<boolean>;

  /**
   * "Work wanted" marks (e.g. "pull this open_kfid"): each mark bumps a generation number so that a worker can
   * clear exactly the marks it has served and see marks that arrived meanwhile.
   */
  markWanted(set: string, member: string): Promise<void>;
  /** @returns the member's generation, 0 when not wanted */
  wantedGeneration(set: string, member: string): Promise<number>;
  /** Clears the mark only if its generation is still `generation`. @returns whether it was cleared */
  clearWanted(set: string, member: string, generation: number): Promise<boolean>;
  listWanted(set: string): Promise<string[]>;

  /**
   * Hands jobs off durably, in one round trip. A job whose id exists (in any state) is not touched: this is the
   * dedup. New jobs are `queued` and become due for any process after `leaseMs` unless claimed first.
   * @param ttlMs how long the record (and so the dedup) lives, from hand-off
   * @returns per job, true when it was created now, false when it already existed
   */
  handOff(jobs: NewJob[], leaseMs: number, ttlMs: number): Promise<boolean[]>;
  /** Claims a job that is queued, or processing under an expired lease (a crashed attempt); increments attempts. */
  claim(id: string, owner: string, leaseMs: number): Promise<ClaimResult>;
  /** @returns false when `owner` no longer holds the job (the lease expired and another process took it) */
  renewJob(id: string, owner: string, leaseMs: number): Promise<boolean>;
  saveProgress(id: string, owner: string, progress: string): Promise<boolean>;
  /** Marks done (kept until its TTL, so the msgid is never processed again). */
  complete(id: string, owner: string): Promise<boolean>;
  /**
   * Gives the job back: queued and due after `delayMs` (0 on graceful shutdown; a backoff after a transient
   * failure), for whichever process sweeps it first.
   */
  releaseJob(id: string, owner: string, delayMs?: number): Promise<boolean>;
  /** Ids of jobs not done whose lease (or hand-off grace) has expired, oldest first. */
  dueJobs(limit: number): Promise<string[]>;

  /** @throws when the backing service does not answer */
  ping(): Promise<void>;
  close(): Promise<void>;
}
