import type { RedisClient } from '../store/redis-client.js';
import type { Logger } from 'pino';
import { keys } from '../store/keys.js';

/**
 * A customer's messages answered in the order written, across processes (issue 5 item 4). BullMQ's open-source
 * edition has no groups, and two workers may each take one of a customer's jobs at the same moment; the customer
 * lock alone keeps them apart but lets the later one win the race. So every job gets a per-customer ticket at
 * hand-off (a sorted set scored by an INCR, in hand-off order) and runs only when it is the oldest unfinished job
 * of its customer. Written here, not taken from a library, because it is the pipeline's own ordering rule.
 */
export interface CustomerOrder {
  /**
   * Gives each job a ticket, in the order given; a job that has one keeps it (WeChat retries, concurrent callbacks).
   * Called BEFORE the jobs are queued, so a job never runs without its ticket. `orderKey` names the customer
   * (`orderKeyOf(id)`).
   */
  enqueue(jobs: { id: string; orderKey: string }[]): Promise<void>;
  /**
   * Waits until `id` is the oldest unfinished job of its customer. A head that `isFinished` says is over (completed
   * or failed in a crash before its ticket was dropped, or gone) is dropped. Gives up waiting after `maxWaitMs` (a
   * head stuck in retries must not silence the customer for good) and says so in the log.
   * @throws the signal's reason when aborted
   */
  awaitTurn(id: string, orderKey: string, signal: AbortSignal, isFinished: (headId: string) => Promise<boolean>, log: Logger): Promise<void>;
  /** The job ended (answered, refused or given up): the customer's next job may run. */
  finish(id: string, orderKey: string): Promise<void>;
}

/** How often a waiting job looks at its customer's queue for a turn freed by another process, ms. */
const POLL_MS = 50;
/** How long a head must look finished (or missing) before its ticket is dropped, ms: covers a ticket-then-add gap. */
const FINISHED_GRACE_MS = 1000;

/**
 * @param client a Redis connection that fails fast (the store's); tickets live `ttlMs` after the last hand-off
 * @param prefix the store's key prefix, e.g. `bridge:`
 * @param maxWaitMs longest wait behind an older job of the same customer, ms (the job lease)
 */
export function createCustomerOrder(client: RedisClient, prefix: string, o: { ttlMs: number; maxWaitMs: number }): CustomerOrder {
  // A customer's two keys change together in one MULTI: on a Redis Cluster they must share a slot (keys.ts tags them).
  const setKey = (orderKey: string) => `${prefix}${keys.customerOrder(orderKey)}`;
  const seqKey = (orderKey: string) => `${prefix}${keys.customerOrderSeq(orderKey)}`;
  // A job finishing in this process wakes its customer's waiters here at once; other processes' are seen by polling.
  const waiters = new Map<string, Set<() => void>>();
  const nextChange = (orderKey: string, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const set = waiters.get(orderKey) ?? new Set<() => void>();
      waiters.set(orderKey, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && waiters.get(orderKey) === set) waiters.delete(orderKey);
        resolve();
      };
      const timer = setTimeout(done, POLL_MS);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  return {
    enqueue: async (jobs) => {
      if (jobs.length === 0) return;
      const known = await Promise.all(jobs.map((j) => client.zscore(setKey(j.orderKey), j.id)));
      const fresh = jobs.filter((_, i) => known[i] === null);
      if (fresh.length === 0) return;
      // One INCRBY per customer reserves a block of tickets (disjoint from any other process's), handed out in the
      // order given: two round trips for a whole sync_msg page.
      const counts = new Map<string, number>();
      for (const j of fresh) counts.set(j.orderKey, (counts.get(j.orderKey) ?? 0) + 1);
      const customers = [...counts.keys()];
      const tops = await Promise.all(customers.map((k) => client.incrby(seqKey(k), counts.get(k)!)));
      const next = new Map(customers.map((k, i) => [k, tops[i]! - counts.get(k)! + 1]));
      // One MULTI per customer (a cluster refuses one that spans slots); a sync_msg page is mostly one customer.
      const txs = new Map(customers.map((k) => [k, client.multi()]));
      for (const j of fresh) {
        const ticket = next.get(j.orderKey)!;
        next.set(j.orderKey, ticket + 1);
        txs.get(j.orderKey)!.zadd(setKey(j.orderKey), 'NX', String(ticket), j.id);
      }
      await Promise.all(customers.map((k) => txs.get(k)!.pexpire(setKey(k), o.ttlMs).pexpire(seqKey(k), o.ttlMs).exec()));
    },
    awaitTurn: async (id, orderKey, signal, isFinished, log) => {
      const started = Date.now();
      // A head whose job is not (yet) in the queue may be one another process has ticketed but not added yet:
      // dropped only once it has looked finished for a while.
      let finishedSince = null as { head: string; at: number } | null;
      for (;;) {
        signal.throwIfAborted();
        const [head] = await client.zrange(setKey(orderKey), '0', '0');
        if (head === undefined || head === id) return;
        if (await isFinished(head)) {
          if (finishedSince?.head !== head) finishedSince = { head, at: Date.now() };
          if (Date.now() - finishedSince.at >= Math.min(FINISHED_GRACE_MS, o.maxWaitMs / 2)) {
            await client.zrem(setKey(orderKey), head);
            continue;
          }
        } else finishedSince = null;
        if (Date.now() - started > o.maxWaitMs) {
          log.warn({ waitingFor: head, waitedMs: Date.now() - started }, 'an older message of this customer is still not answered; answering this one first');
          return;
        }
        await nextChange(orderKey, signal);
      }
    },
    finish: async (id, orderKey) => {
      await client.zrem(setKey(orderKey), id);
      for (const wake of [...(waiters.get(orderKey) ?? [])]) wake();
    },
  };
}
