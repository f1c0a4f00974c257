import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../../store/redis-client.js';
import type { Logger } from 'pino';

const QUEUE_NAME = 'kf-pull';

/**
 * Split deployments (ROLE=web + ROLE=worker): a web process's kf callback becomes a BullMQ job "pull this account",
 * and workers wait on the queue (BullMQ's blocking fetch), instead of polling the pull marks every 200 ms.
 * The marks stay the source of truth (kf/puller.ts): a job only starts a pull; a callback while a pull of the same
 * account runs bumps the mark, and that pull goes round once more.
 */
export interface KfPullQueue {
  /** Adds "pull `account`" unless one is already waiting or running (its job id is the account). @throws when Redis fails */
  request(account: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * @param o.pull runs one pull of the account to its end (the puller's loop, which takes the account's lock)
 * @param o.workerConnection a blocking-capable client (maxRetriesPerRequest null); none: this process only adds jobs
 */
export function createKfPullQueue(o: { producer: RedisClient; workerConnection: RedisClient | null; prefix: string; log: Logger; pull: (account: string) => Promise<void> }): KfPullQueue {
  const queue = new Queue(QUEUE_NAME, {
    connection: o.producer,
    prefix: o.prefix,
    // Removed at once: the next callback after a pull must be able to add the account's job again.
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
  });
  queue.on('error', (err: Error) => o.log.warn({ err: { message: err.message } }, 'kf pull queue error'));
  const worker = o.workerConnection
    ? new Worker<{ account: string }>(QUEUE_NAME, async (job) => o.pull(job.data.account), {
        connection: o.workerConnection,
        prefix: o.prefix,
        // One pull per account runs at a time anyway (the account's lock); several accounts pull side by side.
        concurrency: 16,
      })
    : null;
  worker?.on('error', (err) => o.log.warn({ err: { message: err.message } }, 'kf pull worker error'));
  return {
    request: async (account) => {
      // The account as the job id: while one waits, more callbacks add nothing (it will take every message).
      await queue.add('pull', { account }, { jobId: `pull-${Buffer.from(account).toString('base64url')}` });
    },
    close: async () => {
      await worker?.close();
      await queue.close();
    },
  };
}
