/**
 * The writer's buffer: a FIFO of rows and settlements with two indexes, so a settlement merges into the queued row
 * (or queued settlement) of the same inbound message instead of costing a write of its own, and a row recorded
 * after its settlement (same process) takes the settlement along.
 */
import { applySettlement, inboundKeyOf, mergeSettlements, type PreparedRow } from './row.js';
import type { InboundKey, InboundSettlement } from './types.js';

/** A queued row. `failures`: failed write attempts so far (for the `retried` metric). */
export interface RowItem {
  kind: 'row';
  row: PreparedRow;
  /** inbound rows: inboundKeyOf(...); outbound: null */
  k: string | null;
  failures: number;
  dead: boolean;
}

/** A queued settlement whose row was not in the buffer when it arrived. */
export interface SettleItem {
  kind: 'settle';
  key: InboundKey;
  k: string;
  change: InboundSettlement;
  failures: number;
  dead: boolean;
}

/** What the buffer holds, in recording order. */
export type WriteItem = RowItem | SettleItem;

/** The queue; all operations are synchronous. */
export interface ItemQueue {
  pushRow(row: PreparedRow): void;
  /** @returns true when a new item was queued (false: merged into a queued one) */
  settle(key: InboundKey, change: InboundSettlement): boolean;
  /** Removes and returns the oldest items: at most `n`, and at most `chars` content characters (at least one item). */
  take(n: number, chars: number): WriteItem[];
  /** Returns a failed batch to the front, in its order. */
  putBack(batch: WriteItem[]): void;
  /** Removes the oldest item. */
  shift(): WriteItem | undefined;
  /** Removes everything. */
  drain(): WriteItem[];
  /** items queued (not counting a batch in flight) */
  size(): number;
}

/** Creates an empty buffer. Unbounded by itself: the writer enforces the capacity. */
export function createItemQueue(): ItemQueue {
  let items: WriteItem[] = [];
  let head = 0;
  let live = 0;
  const rowsByKey = new Map<string, RowItem>();
  const settlesByKey = new Map<string, SettleItem>();

  const unindex = (item: WriteItem) => {
    if (item.k === null) return;
    const map = item.kind === 'row' ? rowsByKey : settlesByKey;
    if (map.get(item.k) === item) map.delete(item.k);
  };
  const compact = () => {
    // Dropping the consumed head now and then keeps shift O(1) amortised without an O(n) Array.shift per item.
    if (head > 1024 && head * 2 > items.length) {
      items = items.slice(head);
      head = 0;
    }
  };
  const peek = (): WriteItem | undefined => {
    while (head < items.length && items[head]!.dead) head++;
    return items[head];
  };
  const next = (): WriteItem | undefined => {
    const item = peek();
    if (!item) return undefined;
    head++;
    live--;
    unindex(item);
    return item;
  };

  return {
    pushRow(row) {
      const k = row.direction === 'in' ? inboundKeyOf(row) : null;
      const item: RowItem = { kind: 'row', row, k, failures: 0, dead: false };
      if (k !== null) {
        const early = settlesByKey.get(k);
        if (early) {
          // The settlement came first (this process): the row carries it, the settlement need not be written.
          applySettlement(row, early.change);
          early.dead = true;
          live--;
          settlesByKey.delete(k);
        }
        rowsByKey.set(k, item);
      }
      items.push(item);
      live++;
    },
    settle(key, change) {
      const k = inboundKeyOf(key);
      const row = rowsByKey.get(k);
      if (row) {
        applySettlement(row.row, change);
        return false;
      }
      const queued = settlesByKey.get(k);
      if (queued) {
        queued.change = mergeSettlements(queued.change, change);
        return false;
      }
      const item: SettleItem = { kind: 'settle', key: { channel: key.channel, account: key.account, msgid: key.msgid }, k, change: { ...change }, failures: 0, dead: false };
      settlesByKey.set(k, item);
      items.push(item);
      live++;
      return true;
    },
    take(n, chars) {
      const out: WriteItem[] = [];
      let used = 0;
      while (out.length < n) {
        const first = peek();
        if (!first) break;
        const size = first.kind === 'row' ? first.row.content.length : 0;
        if (out.length > 0 && used + size > chars) break;
        used += size;
        out.push(next()!);
      }
      compact();
      return out;
    },
    putBack(batch) {
      items = [...batch, ...items.slice(head)];
      head = 0;
      live += batch.length;
      for (const item of batch) {
        if (item.k === null) continue;
        // A settlement queued while this batch was in flight stays the place later settlements merge into: it is
        // written after the row, so the newest status wins.
        if (item.kind === 'row' && !settlesByKey.has(item.k) && !rowsByKey.has(item.k)) rowsByKey.set(item.k, item);
        if (item.kind === 'settle' && !settlesByKey.has(item.k)) settlesByKey.set(item.k, item);
      }
    },
    shift() {
      const item = next();
      compact();
      return item;
    },
    drain() {
      const out: WriteItem[] = [];
      for (let item = next(); item; item = next()) out.push(item);
      items = [];
      head = 0;
      return out;
    },
    size: () => live,
  };
}
