/**
 * The key-value storage of the bridge (locks, marks, cursors, conversation state; jobs live in a `JobQueue`). Two
 * implementations keep the same semantics: Redis (shared by every process; survives restarts) and in-process
 * memory (the embedded default when REDIS_URL is unset; nothing survives a restart and nothing is shared). Keys
 * passed in are built by `store/keys.ts`; implementations add their own prefix. All times are milliseconds.
 */

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

  /** @throws when the backing service does not answer */
  ping(): Promise<void>;
  close(): Promise<void>;
}
