/**
 * The message log's batched writer: `record`/`settle` only queue (never wait, never throw); one batch at a time
 * goes to the store (MySQL or Redis) as a multi-row write. While the store fails, batches are retried with
 * exponential backoff and new rows keep queueing; when the bounded buffer is full the OLDEST rows are dropped, so
 * the newest messages (what an operator looks at first after an outage) survive. One log line when an outage
 * starts, one when rows start being dropped, one when writes succeed again: never one per row.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { createItemQueue, type WriteItem } from './writer-queue.js';
import type { PreparedRow } from './row.js';
import { WRITER_DEFAULTS, type BatchWriter, type LogSink, type PendingSettle, type WriterOptions } from './writer-options.js';

export { WRITER_DEFAULTS, type BatchWriter, type LogSink, type PendingSettle, type WriterOptions } from './writer-options.js';

/**
 * Creates the writer in front of a sink. Timers run only while something is queued.
 * @param deps.what names the store in log lines (`mysql`, `redis`)
 * @param opts partial WriterOptions over WRITER_DEFAULTS
 */
export function createBatchWriter(
  sink: LogSink,
  deps: { log: Logger; metrics: Metrics; what: string },
  opts: Partial<WriterOptions> = {},
): BatchWriter {
  const o: WriterOptions = { ...WRITER_DEFAULTS, ...opts };
  const { log, metrics } = deps;
  const q = createItemQueue();
  let inflight: WriteItem[] = [];
  let pumping = false;
  let urgent = false;
  let closed = false;
  let stopped = false;
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeAt = 0;
  let retryAt = 0;
  let backoffMs = 0;
  let failing = false;
  let lastError: string | null = null;
  let dropped = 0;
  let droppedThisEpisode = 0;
  let settlesDroppedThisEpisode = 0;
  let dropLogged = false;
  /** an outage or drops happened and the recovery line is still due */
  let troubled = false;
  let waiters: (() => void)[] = [];

  const dropRow = (n = 1) => {
    dropped += n;
    droppedThisEpisode += n;
    metrics.logWrites.inc({ outcome: 'dropped' }, n);
  };

  const dropOldest = () => {
    const item = q.shift();
    if (!item) return;
    troubled = true;
    if (item.kind === 'row') dropRow();
    else settlesDroppedThisEpisode++;
    if (!dropLogged) {
      dropLogged = true;
      log.warn(
        { store: deps.what, buffer: o.capacity, lastError },
        `message log buffer full (${o.capacity} rows): dropping the oldest rows while ${deps.what} does not take writes`,
      );
    }
  };
  const enforceCapacity = () => {
    while (q.size() + inflight.length > o.capacity && q.size() > 0) dropOldest();
  };

  const kick = (delayMs: number) => {
    if (pumping || stopped) return;
    const at = Date.now() + delayMs;
    if (wakeTimer && wakeAt <= at) return;
    if (wakeTimer) clearTimeout(wakeTimer);
    wakeAt = at;
    wakeTimer = setTimeout(() => {
      wakeTimer = null;
      void pump();
    }, delayMs);
  };
  const schedule = () => {
    const backoff = Math.max(0, retryAt - Date.now());
    kick(backoff > 0 && !urgent ? backoff : q.size() >= o.batchSize || urgent ? 0 : o.delayMs);
  };

  const succeeded = (batch: WriteItem[]) => {
    const rows = batch.filter((i) => i.kind === 'row');
    const retried = rows.filter((i) => i.failures > 0).length;
    if (rows.length > retried) metrics.logWrites.inc({ outcome: 'ok' }, rows.length - retried);
    if (retried > 0) metrics.logWrites.inc({ outcome: 'retried' }, retried);
    failing = false;
    lastError = null;
    backoffMs = 0;
    retryAt = 0;
    // The episode (an outage, or a store slower than the traffic) ends once the backlog is down to half the buffer:
    // under sustained overload that is one line, not one per batch.
    if (troubled && q.size() <= o.capacity / 2) {
      log.info(
        { store: deps.what, dropped: droppedThisEpisode, settlementsDropped: settlesDroppedThisEpisode, buffered: q.size() },
        `message log: ${deps.what} takes writes again`,
      );
      troubled = false;
      droppedThisEpisode = 0;
      settlesDroppedThisEpisode = 0;
      dropLogged = false;
    }
  };

  const failed = (batch: WriteItem[], err: unknown) => {
    troubled = true;
    for (const item of batch) item.failures++;
    q.putBack(batch);
    lastError = err instanceof Error ? err.message : String(err);
    if (!failing) {
      failing = true;
      log.warn(
        { store: deps.what, err: { message: lastError }, buffered: q.size() },
        `message log: writing to ${deps.what} failed; rows wait in the buffer (at most ${o.capacity}) and are retried`,
      );
    }
    backoffMs = backoffMs === 0 ? o.minBackoffMs : Math.min(o.maxBackoffMs, backoffMs * 2);
    retryAt = Date.now() + backoffMs;
    enforceCapacity();
  };

  const pump = async () => {
    pumping = true;
    try {
      while (q.size() > 0 && !stopped) {
        if (retryAt > Date.now() && !urgent) break;
        urgent = false;
        const batch = q.take(o.batchSize, o.batchChars);
        if (batch.length === 0) break;
        inflight = batch;
        const rows: PreparedRow[] = [];
        const settles: PendingSettle[] = [];
        for (const item of batch) {
          if (item.kind === 'row') rows.push(item.row);
          else settles.push({ key: item.key, change: item.change });
        }
        try {
          await sink.write(rows, settles);
          inflight = [];
          succeeded(batch);
        } catch (e) {
          inflight = [];
          failed(batch, e);
        }
      }
    } finally {
      pumping = false;
      inflight = [];
    }
    if (q.size() > 0 && !stopped) schedule();
    else if (q.size() === 0) {
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    }
  };

  const flush = (): Promise<void> => {
    if (q.size() === 0 && !pumping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      waiters.push(resolve);
      urgent = true;
      kick(0);
    });
  };

  return {
    record(row) {
      if (closed) {
        dropRow();
        return;
      }
      q.pushRow(row);
      enforceCapacity();
      schedule();
    },
    settle(key, change) {
      if (closed) return;
      if (q.settle(key, change)) {
        enforceCapacity();
        schedule();
      }
    },
    flush,
    async close(graceMs) {
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([flush(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      stopped = true;
      if (wakeTimer) clearTimeout(wakeTimer);
      const left = q.drain();
      const rows = left.filter((i) => i.kind === 'row').length;
      if (rows > 0) {
        dropRow(rows);
        log.warn({ store: deps.what, rows }, `message log: ${rows} rows could not be written to ${deps.what} before shutdown`);
      }
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    },
    health: () => ({ ok: !failing, buffered: q.size() + inflight.length, dropped, lastError: failing ? lastError : null }),
  };
}
