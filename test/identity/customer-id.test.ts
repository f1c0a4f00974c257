import { describe, expect, it } from 'vitest';
import { withResolveCache } from '../../src/identity/cached.js';
import { isCustomerId, newCustomerId } from '../../src/identity/customer-id.js';
import { createLru } from '../../src/identity/lru.js';
import { createMemoryIdentities } from '../../src/identity/memory-identities.js';
import type { IdentityStore } from '../../src/identity/types.js';

describe('customer ids and the resolve cache', () => {
  it('ids are cus_ + 20 base32 characters, random', () => {
    const ids = Array.from({ length: 20_000 }, newCustomerId);
    for (const id of ids.slice(0, 100)) expect(isCustomerId(id)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Every one of the 32 characters appears, at roughly the same rate.
    const counts = new Map<string, number>();
    for (const id of ids) for (const c of id.slice(4)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(32);
    const expected = (ids.length * 20) / 32;
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.1);
  });

  it('the LRU keeps the most recently used entries and forgets old ones', () => {
    let t = 0;
    const lru = createLru<number>(2, 100, () => t);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    t = 101;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.size).toBe(1);
  });

  it('a busy customer costs the store one resolve per cache period, and erase is seen at once', async () => {
    const inner = createMemoryIdentities();
    let calls = 0;
    const counting: IdentityStore = { ...inner, resolve: (i) => (calls++, inner.resolve(i)) };
    const ids = withResolveCache(counting, { maxAgeMs: 60_000 });
    const who = { channel: 'kf' as const, account: 'ww', externalId: 'busy' };
    const first = await ids.resolve(who);
    for (let i = 0; i < 1000; i++) expect(await ids.resolve(who)).toBe(first);
    expect(calls).toBe(1);
    expect(await ids.erase(first)).toBe(true);
    const next = await ids.resolve(who);
    expect(next).not.toBe(first);
    expect(calls).toBe(2);
  });
});
