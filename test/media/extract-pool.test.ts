import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createExtractPool, type ExtractPool, type ExtractPoolOptions } from '../../src/media/extract-pool.js';
import { ExtractionError } from '../../src/media/extraction-error.js';
import { busyContentStream, manyTagsPage } from './hostile-corpus.js';
import { makePdfWithContent } from './pdf-fixture.js';

/** The limits, caps and recovery of the worker pool, with real worker threads. */

const pools: ExtractPool[] = [];
const poolWith = (o: ExtractPoolOptions) => {
  const pool = createExtractPool({ maxThreads: 1, ...o });
  pools.push(pool);
  return pool;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

const failureOf = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExtractionError);
  return (e as ExtractionError).reason;
};
const smallText = () => Buffer.from('订单号：42\n谢谢');
const readSmall = (pool: ExtractPool) => pool.file(smallText(), { filename: 'note.txt', maxChars: 100 });

/**
 * 50 pages that all draw one 200,000-operator content stream: 14 KB, and ~20 s of pdf.js on one core. Nothing but
 * the wall-clock limit stops it (its stream inflates to 2.8 MB, well inside the pre-scan's budget).
 */
const cpuHeavyPdf = () => makePdfWithContent(zlib.deflateSync(busyContentStream(200_000)), { filters: ['FlateDecode'], pages: 50 });

describe('extraction pool', () => {
  it('extracts pages and files in a worker thread', async () => {
    const pool = poolWith({});
    expect(await pool.page(Buffer.from('<title>T</title><p>hello</p>'), 'text/html', 100)).toEqual({ title: 'T', text: 'hello', truncated: false });
    expect(await readSmall(pool)).toEqual({ kind: 'text', text: '订单号：42\n谢谢', truncated: false });
  });

  it('kills a CPU-bound PDF at its wall-clock limit; the thread is replaced and the next task runs at once', async () => {
    const pool = poolWith({ fileTimeoutMs: 500 });
    await readSmall(pool); // the thread is up: the limit below counts the PDF's own run time
    const started = Date.now();
    expect(await failureOf(pool.file(cpuHeavyPdf(), { filename: 'heavy.pdf', maxChars: 8000 }))).toBe('extraction_timeout');
    const killedAfter = Date.now() - started;
    expect(killedAfter).toBeGreaterThanOrEqual(450);
    expect(killedAfter).toBeLessThan(3000);
    // One thread only: had the PDF kept it, this would wait ~20 s. A fresh thread starts instead (~1 s under tsx).
    const next = Date.now();
    expect((await readSmall(pool)).text).toContain('订单号');
    expect(Date.now() - next).toBeLessThan(8000);
  });

  it('kills a page extraction at its limit (counted from when the worker begins it, not from the queue)', async () => {
    // 20,000 tags of ~1 MiB take this thread ~100 ms; 10 ms is far below that. The file limit is the default.
    const pool = poolWith({ pageTimeoutMs: 10 });
    await readSmall(pool);
    expect(await failureOf(pool.page(Buffer.from(manyTagsPage(130_000)), 'text/html', 4000))).toBe('extraction_timeout');
    expect((await readSmall(pool)).kind).toBe('text');
  });

  it('reports a thread that passes its heap limit as extraction_memory, and recovers', async () => {
    const pool = poolWith({ maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 });
    // 4.4 MB of text decodes to a 4.4 M-character string and copies of it: far more than 16 MiB of heap.
    const big = Buffer.from('中文 text\r\n'.repeat(400_000));
    expect(await failureOf(pool.file(big, { filename: 'big.txt', maxChars: 100 }))).toBe('extraction_memory');
    expect((await readSmall(pool)).kind).toBe('text');
  });

  it('aborts running extractions when the process grows past the RSS limit', async () => {
    // A thread's start alone grows the process by well over 1 MiB, so the watch trips on the first task.
    const pool = poolWith({ rssGrowthLimitBytes: 1024 * 1024 });
    expect(await failureOf(pool.file(Buffer.from('x'.repeat(4 * 1024 * 1024)), { filename: 'big.txt', maxChars: 100 }))).toBe('extraction_memory');
  });

  it('refuses tasks past its queue as extraction_busy', async () => {
    const pool = poolWith({ maxQueue: 1 });
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => readSmall(pool)));
    // One running and one waiting are accepted; the other two are refused at once.
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as ExtractionError).reason))).toEqual([
      'ok',
      'ok',
      'extraction_busy',
      'extraction_busy',
    ]);
    expect((await readSmall(pool)).kind).toBe('text');
  });

  it('rejects with the caller’s reason when the caller aborts', async () => {
    const pool = poolWith({});
    const ctl = new AbortController();
    const reason = new Error('job cancelled');
    setTimeout(() => ctl.abort(reason), 50);
    const e = await pool.file(cpuHeavyPdf(), { filename: 'heavy.pdf', maxChars: 8000 }, ctl.signal).catch((err: unknown) => err);
    expect(e).toBe(reason);
  });

  it('close() ends the pool; later tasks fail as extraction_closed, and close is idempotent', async () => {
    const pool = poolWith({});
    await readSmall(pool);
    await pool.close();
    await pool.close();
    expect(await failureOf(readSmall(pool))).toBe('extraction_closed');
  });
});
