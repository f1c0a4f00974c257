/**
 * Failed replies in this process's memory (no MYSQL_URL, no REDIS_URL). Ids are a sequence, so newest first is
 * highest id first; at most `limit` are kept (the oldest go), like the log rows.
 */
import { clampLimit } from './row.js';
import type { FailedReply, FailureStore } from './types.js';

/** Options of the memory failure store. */
export interface MemoryFailuresOptions {
  /** failures kept at most (MESSAGE_LOG_MEMORY_LIMIT) */
  limit: number;
  /** clock, epoch ms (tests) */
  now?: () => number;
}

/** One key per failed reply: a second failure of the same inbound message replaces the first. */
export function failureKeyOf(f: Pick<FailedReply, 'channel' | 'account' | 'msgid'>): string {
  return `${f.channel}\n${f.account}\n${f.msgid}`;
}

/** Parses a failures cursor or id (a decimal sequence number); NaN when it is not one. */
export function parseSeq(id: string | null): number {
  return id !== null && /^\d{1,15}$/.test(id) ? Number(id) : NaN;
}

/** Creates the memory failure store. Its methods never throw. */
export function createMemoryFailures(o: MemoryFailuresOptions): FailureStore {
  const now = o.now ?? Date.now;
  // Map iteration follows insertion, and ids only grow: the map is oldest first.
  const byId = new Map<string, FailedReply>();
  const byKey = new Map<string, string>();
  let seq = 0;

  const remove = (id: string): boolean => {
    const f = byId.get(id);
    if (!f) return false;
    byId.delete(id);
    const k = failureKeyOf(f);
    if (byKey.get(k) === id) byKey.delete(k);
    return true;
  };
  const copy = (f: FailedReply): FailedReply => ({ ...f, parts: [...f.parts], partIds: [...f.partIds] });

  return {
    async add(input) {
      const k = failureKeyOf(input);
      const old = byKey.get(k);
      if (old !== undefined) remove(old);
      const { atMs, ...rest } = input;
      const f: FailedReply = {
        ...rest,
        parts: [...input.parts],
        partIds: [...input.partIds],
        id: String(++seq),
        at: new Date(atMs ?? now()).toISOString(),
        replays: 0,
      };
      byId.set(f.id, f);
      byKey.set(k, f.id);
      while (byId.size > o.limit) remove(byId.keys().next().value!);
      return copy(f);
    },
    async list(limit, cursor) {
      const n = clampLimit(limit);
      const before = cursor === null ? Infinity : parseSeq(cursor);
      const all = [...byId.values()].reverse().filter((f) => Number(f.id) < before);
      const items = all.slice(0, n).map(copy);
      return { items, nextCursor: all.length > n ? items[items.length - 1]!.id : null };
    },
    get: async (id) => {
      const f = byId.get(id);
      return f ? copy(f) : null;
    },
    remove: async (id) => remove(id),
    async update(id, change) {
      const f = byId.get(id);
      if (!f) return;
      f.errcode = change.errcode;
      f.reason = change.reason;
      f.sent = change.sent;
      f.replays++;
    },
    async forgetCustomer(customerId) {
      let n = 0;
      for (const f of [...byId.values()]) if (f.customerId === customerId && remove(f.id)) n++;
      return n;
    },
  };
}
