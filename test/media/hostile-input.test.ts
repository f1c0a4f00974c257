import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MediaConfig } from '../../src/config.js';
import { createMediaTools } from '../../src/media/tools.js';
import { nodeTransport, type HttpTransport } from '../../src/media/transport.js';
import type { MediaTools } from '../../src/pipeline/media-tools.js';
import type { MediaFile } from '../../src/wechat-api/http.js';
import { capturingLogger, measureCost, type Cost } from './cost-probe.js';
import { binaryBytes, colspanPage, deeplyNestedPage, deflatedRun, manyTagsPage } from './hostile-corpus.js';
import { startServer, type LocalServer } from './local-server.js';
import { makePdf, makePdfWithContent } from './pdf-fixture.js';

/**
 * The cost of hostile input (docs/configuration.md): whatever a customer links or sends, the event loop is not blocked
 * and the process does not grow by 256 MiB, and the answer is the text or a null the pipeline answers around.
 * Every case goes through the real MediaTools: a real local HTTP server for pages, real worker threads.
 *
 * Event-loop bound: the target is 50 ms of blocking. `monitorEventLoopDelay` at 10 ms resolution reports the
 * interval itself (an idle loop reads 10–13 ms), and this 2-core box runs two test files at once, so scheduling
 * adds tens of ms now and then; the bound asserted is 100 ms. Before extraction moved off the main thread these
 * cases blocked it for 4,000–7,000 ms (the 100-cell page for more than a minute), so 100 ms still tells the two
 * apart by a factor of 40.
 */

const MiB = 1024 * 1024;
const LOOP_MAX_MS = 100;
const RSS_MAX_MIB = 256;

const config: MediaConfig = { maxBytes: 10 * MiB, allowHosts: '127.0.0.1', answerImageAllowHosts: '', fileMaxBytes: 5 * MiB };
const { log, records } = capturingLogger();
const loopbackOnly: HttpTransport = (req) =>
  req.addresses.every((a) => a.address === '127.0.0.1')
    ? nodeTransport(req)
    : Promise.reject(Object.assign(new Error('test guard'), { code: 'ETESTGUARD' }));

const pages: Record<string, string> = {
  '/warm': '<p>warm</p>',
  '/colspan-30': colspanPage(30),
  '/colspan-100': colspanPage(100),
  '/deep': deeplyNestedPage(),
  '/many-tags': manyTagsPage(130_000),
};

let server: LocalServer;
let tools: MediaTools;
const figures: Array<[string, Cost<unknown>]> = [];
const file = (data: Buffer, filename: string, contentType: string): MediaFile => ({ data, filename, contentType });
const reasonsLogged = () => records.map((r) => r.reason).filter(Boolean);

/** Runs one hostile case, records its figures, and asserts the common bounds. */
async function hostile<T>(name: string, work: () => Promise<T>, maxWallMs: number): Promise<T> {
  const cost = await measureCost(work);
  figures.push([name, cost]);
  expect(cost.wallMs).toBeLessThan(maxWallMs);
  expect(cost.loopMaxMs).toBeLessThan(LOOP_MAX_MS);
  expect(cost.rssGrowthMiB).toBeLessThan(RSS_MAX_MIB);
  return cost.value;
}

beforeAll(async () => {
  server = await startServer((req, res) => {
    const body = pages[req.url ?? ''];
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
  });
  tools = createMediaTools(config, log, { transport: loopbackOnly, extraction: { idleTimeoutMs: 120_000 } });
  // Start the thread and load pdf.js once: the figures below are each input's own cost. The start-up itself is
  // measured in its own test.
  await tools.readPage(`${server.origin}/warm`, new AbortController().signal);
  await tools.fileText(file(makePdf(['warm']), 'warm.pdf', 'application/pdf'));
});
afterAll(async () => {
  await tools.close();
  await server.close();
  const row = ([name, c]: [string, Cost<unknown>]) =>
    `${name.padEnd(34)} wall ${c.wallMs.toFixed(0).padStart(5)} ms  loop max ${c.loopMaxMs.toFixed(1).padStart(5)} ms  rss +${c.rssGrowthMiB.toFixed(0)} MiB`;
  console.info(`cost of hostile input (event loop includes the 10 ms sampling interval):\n${figures.map(row).join('\n')}`);
});

describe('hostile pages a customer links', () => {
  const read = (path: string) => tools.readPage(`${server.origin}${path}`, new AbortController().signal);

  it('the 585-byte colspan page: read as rows of cells, without the table layout', async () => {
    expect(Buffer.byteLength(pages['/colspan-30']!)).toBe(585);
    const page = await hostile('colspan page, 585 B (30 cells)', () => read('/colspan-30'), 2000);
    expect(page?.text).toBe(Array(30).fill('x').join(' | '));
  });

  it('the colspan page with 100 cells (a minute of CPU before)', async () => {
    const page = await hostile('colspan page, 100 cells', () => read('/colspan-100'), 2000);
    expect(page?.text.split(' | ')).toHaveLength(100);
  });

  it('200,000 nested <div>s (1 MB)', async () => {
    const page = await hostile('200k nested <div>s', () => read('/deep'), 2000);
    expect(page?.text).toBe('visible before the trap');
  });

  it('130,000 sibling tags (~1 MiB, 6x the tag cap)', async () => {
    const page = await hostile('130k sibling tags', () => read('/many-tags'), 2000);
    expect(page?.text.startsWith('x\n\nx')).toBe(true);
  });
});

describe('hostile files a customer sends', () => {
  it('a PDF zip bomb: a 400 KB PDF whose content stream inflates to 400 MiB is refused before pdf.js', async () => {
    const bomb = makePdfWithContent(await deflatedRun(400), { filters: ['FlateDecode'] });
    expect(bomb.length).toBeLessThan(450 * 1024);
    const text = await hostile('PDF bomb, 400 MiB inflated', () => tools.fileText(file(bomb, 'bomb.pdf', 'application/pdf')), 2000);
    expect(text).toBeNull();
    expect(reasonsLogged().at(-1)).toBe('too_large');
  });

  it('a double-Flate PDF bomb (1 KB → 200 MiB) is refused too', async () => {
    const bomb = makePdfWithContent(zlib.deflateSync(await deflatedRun(200)), { filters: ['FlateDecode', 'FlateDecode'] });
    expect(bomb.length).toBeLessThan(2048);
    expect(await hostile('PDF bomb, Flate twice', () => tools.fileText(file(bomb, 'bomb.pdf', 'application/pdf')), 2000)).toBeNull();
    expect(reasonsLogged().at(-1)).toBe('too_large');
  });

  it('a PDF of 2,000 pages: the first pages are read, the rest not parsed', async () => {
    const pdf = makePdf(Array.from({ length: 2000 }, (_, i) => `Page ${i + 1} of the annual report. `.repeat(8)));
    const r = await hostile('PDF, 2,000 pages', () => tools.fileText(file(pdf, 'report.pdf', 'application/pdf')), 5000);
    expect(r?.kind).toBe('pdf');
    expect(r?.text.startsWith('Page 1 of the annual report.')).toBe(true);
    expect(r?.text.endsWith('…（文件较长，只读了前一部分）')).toBe(true);
  });

  it('a 5 MiB text file (FILE_MAX_BYTES): capped text; one byte more is refused without reading', async () => {
    const line = Buffer.from('客服记录 line\n');
    const lines = Buffer.from(line.toString().repeat(Math.floor((5 * MiB) / line.length)));
    const huge = Buffer.concat([lines, Buffer.alloc(5 * MiB - lines.length, '.')]);
    const r = await hostile('text file, 5 MiB', () => tools.fileText(file(huge, 'log.txt', 'text/plain')), 3000);
    expect(r?.kind).toBe('text');
    expect(r?.text.startsWith('客服记录 line\n')).toBe(true);
    expect(r?.text.length).toBeLessThan(8_100);
    const over = Buffer.concat([huge, Buffer.from('x')]);
    expect(await tools.fileText(file(over, 'log.txt', 'text/plain'))).toBeNull();
    expect(records.at(-1)).toMatchObject({ reason: 'too_large', bytes: 5 * MiB + 1, limit: 5 * MiB });
  });

  it('a .txt of binary data is unreadable', async () => {
    const r = await hostile('.txt of 4 MiB binary', () => tools.fileText(file(binaryBytes(4 * MiB), 'data.txt', 'text/plain')), 2000);
    expect(r).toBeNull();
    expect(reasonsLogged().at(-1)).toBe('unreadable');
  });
});

describe('the pool itself', () => {
  it('starting a thread cold stays inside the bounds too', async () => {
    const cold = createMediaTools(config, log, { transport: loopbackOnly });
    try {
      const page = await hostile('cold start + colspan page', () => cold.readPage(`${server.origin}/colspan-30`, new AbortController().signal), 5000);
      expect(page?.text).toContain('x | x');
    } finally {
      await cold.close();
    }
  });
});
