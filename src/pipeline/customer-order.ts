import type { Redis } from 'ioredis';
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

const POLL_MS = 50;

/**
 * @param client a Redis connection that fails fast (the store's); tickets live `ttlMs` after the last hand-off
 * @param prefix the store's key prefix, e.g. `bridge:`
 * @param maxWaitMs longest wait behind an older job of the same customer, ms (the job lease)
 */
export function createCustomerOrder(client: Redis, prefix: string, o: { ttlMs: number; maxWaitMs: number }): CustomerOrder {
  const setKey = (orderKey: string) => `${prefix}${keys.customerOrder(orderKey)}`;
  const seqKey = (orderKey: string) => `${prefix}${keys.customerOrderSeq(orderKey)}`;
  return {
    enqueue: async (jobs) => {
      if (jobs.length === 0) return;
      const known = await Promise.all(jobs.map((j) => client.zscore(setKey(j.orderKey), j.id)));
      // In order, one after another: the ticket order is the hand-off order.
      for (const [i, j] of jobs.entries()) {
        if (known[i] !== null) continue;
        const ticket = await client.incr(seqKey(j.orderKey));
        await client
          .multi()
          .zadd(setKey(j.orderKey), 'NX', String(ticket), j.id)
          .pexpire(setKey(j.orderKey), o.ttlMs)
          .pexpire(seqKey(j.orderKey), o.ttlMs)
          .exec();
      }
    },
    awaitTurn: async (id, orderKey, signal, isFinished, log) => {
      const started = Date.now();
      for (;;) {
        signal.throwIfAborted();
        const [head] = await client.zrange(setKey(orderKey), '0', '0');
        if (head === undefined || head === id) return;
        if (await isFinished(head)) {
          await client.zrem(setKey(orderKey), head);
          continue;
        }
        if (Date.now() - started > o.maxWaitMs) {
          log.warn({ waitingFor: head, waitedMs: Date.now() - started }, 'an older message of this customer is still not answered; answering this one first');
          return;
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
    finish: async (id, orderKey) => {
      await client.zrem(setKey(orderKey), id);
    },
  };
}
