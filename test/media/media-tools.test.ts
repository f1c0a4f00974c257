import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MediaConfig } from '../../src/config.js';
import { createMediaTools, type MediaToolsOverrides } from '../../src/media/tools.js';
import { nodeTransport, type HttpTransport } from '../../src/media/transport.js';
import type { MediaTools } from '../../src/pipeline/media-tools.js';
import { PNG_1X1 } from '../llm/contract-drivers.js';
import { capturingLogger } from './cost-probe.js';
import { busyContentStream, manyTagsPage } from './hostile-corpus.js';
import { startServer, type LocalServer } from './local-server.js';
import { makePdfWithContent } from './pdf-fixture.js';

/** createMediaTools as the channels use it: which allow-list serves what, size caps, and failures as nulls. */

const MiB = 1024 * 1024;
const base: MediaConfig = { maxBytes: 10 * MiB, allowHosts: '', answerImageAllowHosts: '', fileMaxBytes: 5 * MiB };
const loopbackOnly: HttpTransport = (req) =>
  req.addresses.every((a) => a.address === '127.0.0.1')
    ? nodeTransport(req)
    : Promise.reject(Object.assign(new Error('test guard'), { code: 'ETESTGUARD' }));
const signal = () => new AbortController().signal;

let server: LocalServer;
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/a.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG_1X1);
    if (req.url === '/slow-page') return void res.writeHead(200, { 'content-type': 'text/html' }).end(manyTagsPage(130_000));
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<title>店铺</title><p>七天无理由退货。</p>');
  });
});
afterAll(() => server.close());

const open: MediaTools[] = [];
const toolsWith = (config: Partial<MediaConfig>, o: Omit<MediaToolsOverrides, 'transport'> = {}) => {
  const { log, records } = capturingLogger();
  const tools = createMediaTools({ ...base, ...config }, log, { transport: loopbackOnly, ...o });
  open.push(tools);
  return { tools, records };
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

describe('answer images and customers’ links use separate allow-lists', () => {
  it('an answer image on a host listed only in FETCH_ALLOW_HOSTS is refused, without a connection', async () => {
    const { tools, records } = toolsWith({ allowHosts: '127.0.0.1' });
    const before = server.connections;
    expect(await tools.fetchImage(`${server.origin}/a.png`, signal())).toBeNull();
    expect(server.connections).toBe(before);
    expect(records.at(-1)).toMatchObject({ reason: 'address', msg: 'answer image not read' });
    // The same host still serves customers' links.
    expect((await tools.readPage(`${server.origin}/page`, signal()))?.text).toBe('七天无理由退货。');
  });

  it('an answer image on a host in ANSWER_IMAGE_ALLOW_HOSTS is fetched; that list does not open links', async () => {
    const { tools, records } = toolsWith({ answerImageAllowHosts: '127.0.0.1' });
    const image = await tools.fetchImage(`${server.origin}/a.png`, signal());
    expect(image).toEqual({ data: PNG_1X1, mime: 'image/png', name: 'a.png' });
    expect(await tools.readPage(`${server.origin}/page`, signal())).toBeNull();
    expect(records.at(-1)).toMatchObject({ reason: 'address', msg: 'linked page not read' });
  });

  it('refuses an answer image at http://[::127.0.0.1]/ even with 127.0.0.1 allowed', async () => {
    const { tools } = toolsWith({ answerImageAllowHosts: '127.0.0.1' });
    expect(await tools.fetchImage(`http://[::127.0.0.1]:${server.port}/a.png`, signal())).toBeNull();
  });
});

describe('sizes and failed extractions', () => {
  it('exposes MEDIA_MAX_BYTES and FILE_MAX_BYTES', () => {
    const { tools } = toolsWith({ maxBytes: 3 * MiB, fileMaxBytes: 2 * MiB });
    expect(tools.maxBytes).toBe(3 * MiB);
    expect(tools.fileMaxBytes).toBe(2 * MiB);
  });

  it('refuses a file over FILE_MAX_BYTES', async () => {
    const { tools, records } = toolsWith({ fileMaxBytes: 1024 });
    expect(await tools.fileText({ data: Buffer.alloc(1025, 'a'), filename: 'a.txt', contentType: 'text/plain' })).toBeNull();
    expect(records.at(-1)).toMatchObject({ reason: 'too_large', limit: 1024 });
    expect(await tools.fileText({ data: Buffer.alloc(1024, 'a'), filename: 'a.txt', contentType: 'text/plain' })).toMatchObject({ kind: 'text' });
  });

  it('a page whose extraction passes its limit is null, logged as extraction_timeout; the pool recovers', async () => {
    // ~100 ms of extraction against a 10 ms limit; the limit counts from when the worker begins the task.
    const { tools, records } = toolsWith({ allowHosts: '127.0.0.1' }, { extraction: { pageTimeoutMs: 10 } });
    expect(await tools.fileText({ data: Buffer.from('warm'), filename: 'a.txt', contentType: null })).not.toBeNull();
    expect(await tools.readPage(`${server.origin}/slow-page`, signal())).toBeNull();
    expect(records.at(-1)).toMatchObject({ reason: 'extraction_timeout', msg: 'linked page not read', url: `${server.origin}/slow-page` });
    expect(await tools.fileText({ data: Buffer.from('订单 42'), filename: 'a.txt', contentType: null })).toEqual({ kind: 'text', text: '订单 42' });
  });

  it('a PDF killed at its limit is null, logged as extraction_timeout, not thrown', async () => {
    const { tools, records } = toolsWith({}, { extraction: { fileTimeoutMs: 500 } });
    const heavy = makePdfWithContent(zlib.deflateSync(busyContentStream(200_000)), { filters: ['FlateDecode'], pages: 50 });
    const started = Date.now();
    expect(await tools.fileText({ data: heavy, filename: 'heavy.pdf', contentType: 'application/pdf' })).toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(records.at(-1)).toMatchObject({ reason: 'extraction_timeout', msg: 'file text not extracted' });
  });

  it('after close(), extractions are null (extraction_closed) rather than errors', async () => {
    const { tools, records } = toolsWith({});
    await tools.close();
    expect(await tools.fileText({ data: Buffer.from('x'), filename: 'a.txt', contentType: null })).toBeNull();
    expect(records.at(-1)).toMatchObject({ reason: 'extraction_closed' });
  });
});
