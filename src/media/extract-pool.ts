/**
 * Extraction off the event loop: page HTML → text, PDF → text and text-file decoding run in worker threads
 * (extract-worker.ts) managed by piscina, the maintained pool for Node worker threads. A customer's content must
 * not block the loop for more than 50 ms or grow the process by more than 256 MiB (docs/configuration.md, "Cost of
 * hostile input"); the caps here are what make that hold:
 * - a wall-clock limit per task, counted from when the worker begins it; piscina terminates a thread whose task's
 *   AbortSignal fires, which stops even a tight loop, and starts a fresh one for the next task;
 * - `resourceLimits` on each thread's V8 heap (a thread past it dies with ERR_WORKER_OUT_OF_MEMORY);
 * - the RSS watch (rss-watch.ts) for what heap limits do not see (ArrayBuffers, native memory);
 * - few threads (one on a 2-core machine: the event loop keeps a core) and none while idle.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { Piscina } from 'piscina';
import type { FormatInput, FormattedAnswer } from '../format/format-answer.js';
import { ExtractionError } from './extraction-error.js';
import { TASK_STARTED, type ExtractOutcome, type ExtractTask } from './extract-task.js';
import { FileTextError, type FileText, type FileTextOptions } from './file-text.js';
import type { PageText } from './page-body-text.js';
import { createRssWatch } from './rss-watch.js';
import { extractWorkerFile } from './worker-entry.js';

/** Limits of the pool; every field has a default. */
export interface ExtractPoolOptions {
  /** threads at most (default 1 on ≤ 2 cores, else 2) */
  maxThreads?: number;
  /** ms an idle thread is kept before it exits (default 30,000) */
  idleTimeoutMs?: number;
  /** ms a page extraction may run in its worker (default 3,000; a real page takes tens of ms) */
  pageTimeoutMs?: number;
  /** ms a file extraction may run (default 10,000; 50 PDF pages take a few seconds on a slow core) */
  fileTimeoutMs?: number;
  /** ms a task may wait for a worker to begin it (queue and thread start-up; default 15,000) */
  startTimeoutMs?: number;
  /** tasks waiting for a thread, beyond those running; more are refused at once as `extraction_busy` (default 16) */
  maxQueue?: number;
  /** MiB of old-generation heap per thread (default 128) */
  maxOldGenerationSizeMb?: number;
  /** MiB of young-generation heap per thread (default 16) */
  maxYoungGenerationSizeMb?: number;
  /** bytes the process may grow while extractions run (default 200 MiB) */
  rssGrowthLimitBytes?: number;
  /** worker errors outside any task are logged here */
  log?: Logger;
}

/** Extraction in worker threads. */
export interface ExtractPool {
  /**
   * A fetched page body → title and text (pageBodyToText in a worker).
   * @throws ExtractionError; the signal's reason when `signal` fired
   */
  page(body: Buffer, contentType: string | null, maxChars: number, signal?: AbortSignal): Promise<PageText>;
  /**
   * A customer's file → text (extractFileText in a worker).
   * @throws FileTextError as extractFileText does; ExtractionError; the signal's reason when `signal` fired
   */
  file(body: Buffer, options: FileTextOptions, signal?: AbortSignal): Promise<FileText>;
  /**
   * A long answer → WeChat text and parts (formatAnswer in a worker), within the page time limit.
   * @throws ExtractionError; the signal's reason when `signal` fired
   */
  format(input: FormatInput, signal?: AbortSignal): Promise<FormattedAnswer>;
  /** Terminates the threads; later and pending calls fail with `extraction_closed`. Idempotent. */
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * Creates the pool; no thread starts until the first task. (Run from TypeScript sources, its threads need tsx,
 * a devDependency: see extractWorkerFile. Without it every extraction fails as `extraction_timeout`.)
 */
export function createExtractPool(options: ExtractPoolOptions = {}): ExtractPool {
  const maxThreads = options.maxThreads ?? (os.availableParallelism() <= 2 ? 1 : 2);
  // Our own bound on waiting tasks: piscina's `maxQueue` does not count tasks that carry an AbortSignal (it keeps
  // them in a separate, unbounded queue), and every task here carries one.
  const maxInFlight = maxThreads + (options.maxQueue ?? 16);
  const pool = new Piscina<ExtractTask, ExtractOutcome>({
    filename: extractWorkerFile(import.meta.url),
    // None of the process's flags: Node refuses some process-wide ones in a worker, and an inherited
    // `--enable-source-maps` would make pdf.js cost each thread tens of MB more.
    execArgv: [],
    minThreads: 0,
    maxThreads,
    idleTimeout: options.idleTimeoutMs ?? 30_000,
    resourceLimits: {
      maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? 128,
      maxYoungGenerationSizeMb: options.maxYoungGenerationSizeMb ?? 16,
    },
  });
  const watch = createRssWatch({ limitBytes: options.rssGrowthLimitBytes ?? 200 * MiB });
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  /** task id → starts its wall-clock limit (called on the worker's started message) */
  const onStarted = new Map<number, () => void>();
  let seq = 0;
  let inFlight = 0;
  let closing: Promise<void> | null = null;

  pool.on('message', (m: unknown) => {
    const id = (m as Record<string, unknown> | null)?.[TASK_STARTED];
    if (typeof id === 'number') onStarted.get(id)?.();
  });
  // Without a listener an 'error' event (a thread that failed outside any task) would throw on the event loop.
  pool.on('error', (e: unknown) => options.log?.warn({ err: e instanceof Error ? e.message : String(e) }, 'extraction worker error'));

  const run = (task: ExtractTask, runMs: number, signal: AbortSignal | undefined): Promise<ExtractOutcome> => {
    if (closing) return Promise.reject(new ExtractionError('extraction_closed', 'extraction pool is closed'));
    if (inFlight >= maxInFlight) return Promise.reject(new ExtractionError('extraction_busy', `extraction queue is full (${inFlight} tasks)`));
    inFlight++;
    const limit = new AbortController();
    let timer = setTimeout(() => limit.abort(`did not start within ${startTimeoutMs} ms`), startTimeoutMs).unref();
    onStarted.set(task.id, () => {
      clearTimeout(timer);
      timer = setTimeout(() => limit.abort(`ran longer than ${runMs} ms`), runMs).unref();
    });
    return watch.track(async (memory) => {
      try {
        return await pool.run(task, { signal: AbortSignal.any(signal ? [limit.signal, memory, signal] : [limit.signal, memory]) });
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (limit.signal.aborted) throw new ExtractionError('extraction_timeout', `extraction ${String(limit.signal.reason)}`);
        if (memory.aborted) throw new ExtractionError('extraction_memory', (memory.reason as Error).message);
        throw failure(e, closing !== null);
      } finally {
        inFlight--;
        clearTimeout(timer);
        onStarted.delete(task.id);
      }
    });
  };

  return {
    page: async (body, contentType, maxChars, signal) => {
      const out = await run({ kind: 'page', id: ++seq, body, contentType, maxChars }, options.pageTimeoutMs ?? 3_000, signal);
      if (!out.ok || out.kind !== 'page') throw new ExtractionError('extraction_failed', 'page extraction gave no page');
      return out.page;
    },
    file: async (body, o, signal) => {
      const task: ExtractTask = {
        kind: 'file',
        id: ++seq,
        body,
        filename: o.filename ?? null,
        contentType: o.contentType ?? null,
        maxChars: o.maxChars,
        ...(o.maxPages !== undefined ? { maxPages: o.maxPages } : {}),
      };
      const out = await run(task, options.fileTimeoutMs ?? 10_000, signal);
      if (!out.ok) throw new FileTextError(out.reason, out.message);
      if (out.kind !== 'file') throw new ExtractionError('extraction_failed', 'file extraction gave no file');
      return out.file;
    },
    format: async (input, signal) => {
      const out = await run({ ...input, kind: 'format', id: ++seq }, options.pageTimeoutMs ?? 3_000, signal);
      if (!out.ok || out.kind !== 'format') throw new ExtractionError('extraction_failed', 'formatting gave no answer');
      return out.answer;
    },
    close: () => (closing ??= pool.destroy()),
  };
}

/** A pool error (not one of our aborts) as an ExtractionError. */
function failure(e: unknown, closing: boolean): ExtractionError {
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') return new ExtractionError('extraction_memory', `extraction worker ran out of heap (${message})`);
  if (closing) return new ExtractionError('extraction_closed', 'extraction pool is closed');
  return new ExtractionError('extraction_failed', `extraction failed (${message.slice(0, 200)})`);
}
