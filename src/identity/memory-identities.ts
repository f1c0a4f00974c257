/**
 * Customer identities in this process's memory (no MYSQL_URL, no REDIS_URL): a restart gives every customer a new
 * id. At most `max` customers are kept; the least recently seen is forgotten first (its next message makes a new
 * customer), so a long-running process with many one-time visitors stays bounded.
 */
import { newCustomerId, identityKeyOf } from './customer-id.js';
import { clampCustomerLimit, customerRecord, identitiesMatch } from './find.js';
import type { Identity, IdentityStore } from './types.js';

interface Customer {
  identities: Identity[];
  nickname: string | null;
  firstSeen: number;
  lastSeen: number;
}

/** Options of the memory store. */
export interface MemoryIdentitiesOptions {
  /** customers kept; default 100,000 */
  max?: number;
  /** clock, epoch ms */
  now?: () => number;
}

/** Creates the store; its methods never throw. */
export function createMemoryIdentities(o: MemoryIdentitiesOptions = {}): IdentityStore {
  const now = o.now ?? Date.now;
  const max = o.max ?? 100_000;
  const index = new Map<string, string>();
  // Insertion order = least recently seen first (a resolve re-inserts).
  const customers = new Map<string, Customer>();

  const erase = (id: string): boolean => {
    const c = customers.get(id);
    if (!c) return false;
    customers.delete(id);
    for (const i of c.identities) if (index.get(identityKeyOf(i)) === id) index.delete(identityKeyOf(i));
    return true;
  };
  const record = (id: string, c: Customer) => customerRecord(id, c.identities, c.nickname, c.firstSeen, c.lastSeen);

  return {
    kind: 'memory',
    async resolve(identity) {
      const k = identityKeyOf(identity);
      const t = now();
      const known = index.get(k);
      const c = known === undefined ? undefined : customers.get(known);
      if (known !== undefined && c) {
        c.lastSeen = t;
        customers.delete(known);
        customers.set(known, c);
        return known;
      }
      const id = newCustomerId();
      index.set(k, id);
      customers.set(id, { identities: [{ channel: identity.channel, account: identity.account, externalId: identity.externalId }], nickname: null, firstSeen: t, lastSeen: t });
      if (customers.size > max) erase(customers.keys().next().value!);
      return id;
    },
    async get(id) {
      const c = customers.get(id);
      return c ? record(id, c) : null;
    },
    async find(q) {
      const out = [];
      const limit = clampCustomerLimit(q.limit);
      if (q.channel !== undefined && q.account !== undefined && q.externalId !== undefined) {
        const id = index.get(identityKeyOf({ channel: q.channel, account: q.account, externalId: q.externalId }));
        const c = id === undefined ? undefined : customers.get(id);
        return id !== undefined && c ? [record(id, c)] : [];
      }
      // Most recently seen first: the map's end.
      for (const [id, c] of [...customers].reverse()) {
        if (!identitiesMatch(c.identities, q)) continue;
        out.push(record(id, c));
        if (out.length === limit) break;
      }
      return out;
    },
    async identityOf(id) {
      const i = customers.get(id)?.identities[0];
      return i ? { ...i } : null;
    },
    async setNickname(id, nickname) {
      const c = customers.get(id);
      if (c) c.nickname = nickname;
    },
    erase: async (id) => erase(id),
    close: async () => undefined,
  };
}
