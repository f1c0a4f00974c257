/**
 * The LRU in front of `resolve`: a customer who writes every few seconds costs the store one call a minute (which
 * also moves `lastSeen`), not one per message. `erase` clears this process's entries at once; other processes
 * serve their cached id for at most `maxAgeMs` after an erasure.
 */
import { createLru } from './lru.js';
import { identityKeyOf } from './customer-id.js';
import type { IdentityStore } from './types.js';

/** Cache tuning. */
export interface IdentityCacheOptions {
  /** identities cached; default 10,000 */
  max?: number;
  /** ms an entry is served; default 60,000 */
  maxAgeMs?: number;
}

/** Wraps a store: same methods, `resolve` cached. */
export function withResolveCache(store: IdentityStore, o: IdentityCacheOptions = {}): IdentityStore {
  const cache = createLru<string>(o.max ?? 10_000, o.maxAgeMs ?? 60_000);
  return {
    kind: store.kind,
    async resolve(identity) {
      const k = identityKeyOf(identity);
      const hit = cache.get(k);
      if (hit !== undefined) return hit;
      const id = await store.resolve(identity);
      cache.set(k, id);
      return id;
    },
    get: (id) => store.get(id),
    find: (q) => store.find(q),
    identityOf: (id) => store.identityOf(id),
    setNickname: (id, nickname) => store.setNickname(id, nickname),
    async erase(id) {
      cache.deleteWhere((v) => v === id);
      const existed = await store.erase(id);
      // A resolve that was in flight during the erasure may have cached the old id again.
      cache.deleteWhere((v) => v === id);
      return existed;
    },
    close: () => store.close(),
  };
}
