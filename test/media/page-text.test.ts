import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/media/address-policy.js';
import { createExtractPool, type ExtractPool } from '../../src/media/extract-pool.js';
import { FetchRefusedError } from '../../src/media/fetch-error.js';
import { fetchPageSummary, type PageTextDeps } from '../../src/media/page-text.js';
import { nodeTransport, type HttpTransport } from '../../src/media/transport.js';
import { startServer, type LocalServer } from './local-server.js';

const UTF8_PAGE = `<!doctype html>
<html><head>
  <meta charset="utf-8">
  <title>  Spring   sale &amp; more  </title>
  <style>body { color: red } .secret { display: none }</style>
  <script>window.TRACKER = "do-not-leak";</script>
</head><body>
  <nav><a href="/">Home</a> | <a href="/about">About</a></nav>
  <h1>Spring sale</h1>
  <p>All   tea sets are <b>20%</b> off
     until Friday.</p><p>Shipping is free over ¥99.</p>
  <script>console.log("inline script")</script>
  <noscript>Enable JavaScript</noscript>
  <footer>© Example shop</footer>
</body></html>`;

const GBK_TEXT = '春季促销：所有茶具八折，满九十九元包邮。';
const GBK_META_PAGE = iconv.encode(
  `<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"><title>茶具店</title></head><body><p>${GBK_TEXT}</p></body></html>`,
  'gbk',
);
const GB2312_HEADER_PAGE = iconv.encode(`<html><head><title>店铺公告</title></head><body><article><p>${GBK_TEXT}</p></article></body></html>`, 'gbk');
const UNDECLARED_GBK_PAGE = iconv.encode(`<html><head><title>无声明</title></head><body><p>${GBK_TEXT}</p></body></html>`, 'gb18030');
const OG_PAGE = `<html><head><meta property="og:title" content="文章标题"><title>文章标题 - 公众号</title></head><body>
  <div id="js_content" style="visibility: hidden;"><p>正文第一段。</p><p>正文第二段。</p></div><div class="qr">扫码关注</div></body></html>`;

const routes: Record<string, { type: string | null; body: Buffer | string }> = {
  '/utf8': { type: 'text/html; charset=utf-8', body: UTF8_PAGE },
  '/gbk-meta': { type: 'text/html', body: GBK_META_PAGE },
  '/gb2312-header': { type: 'text/html; charset=GB2312', body: GB2312_HEADER_PAGE },
  '/gbk-undeclared': { type: 'text/html', body: UNDECLARED_GBK_PAGE },
  '/og': { type: 'text/html; charset=utf-8', body: OG_PAGE },
  '/long': { type: 'text/html', body: `<html><body><p>${'长文本'.repeat(3000)}</p></body></html>` },
  '/plain': { type: 'text/plain; charset=utf-8', body: 'line one\r\n\r\n\r\n   line   two  ' },
  '/plain-gbk': { type: 'text/plain', body: iconv.encode(GBK_TEXT, 'gbk') },
  '/untyped': { type: null, body: '<p>no content type</p>' },
  '/pdf': { type: 'application/pdf', body: '%PDF-1.4 …' },
  '/image': { type: 'image/jpeg', body: Buffer.from([0xff, 0xd8, 0xff, 0xe0]) },
  '/deep': { type: 'text/html', body: `<html><body><p>visible before the trap</p>${'<div>'.repeat(200_000)}never reached</body></html>` },
  '/huge': { type: 'text/html', body: `<p>${'x'.repeat(2 * 1024 * 1024)}</p>` },
  '/table': {
    type: 'text/html',
    body: `<h2>价格表</h2><table><caption>2024</caption><thead><tr><th>商品</th><th colspan="2">价格</th></tr></thead>
      <tbody><tr><td>茶具 <b>套装</b></td>\n<!-- gap --><td rowspan="3">¥99</td><td><p>包邮</p></td></tr><tr><td></td><td>单杯</td></tr></tbody></table><p>以上。</p>`,
  },
};

let server: LocalServer;
/** Extraction runs in real worker threads, as in production. */
let pool: ExtractPool;
beforeAll(async () => {
  pool = createExtractPool();
  server = await startServer((req, res) => {
    const r = routes[req.url ?? ''];
    if (!r) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, r.type ? { 'content-type': r.type } : {});
    res.end(r.body);
  });
});
afterAll(async () => {
  await server.close();
  await pool.close();
});

/** Only loopback connections, ever (a regression must not send a packet elsewhere). */
const loopbackOnly: HttpTransport = (req) =>
  req.addresses.every((a) => a.address === '127.0.0.1')
    ? nodeTransport(req)
    : Promise.reject(Object.assign(new Error('test guard'), { code: 'ETESTGUARD' }));
const deps = (): PageTextDeps => ({ fetchOptions: { allowList: parseAllowList('127.0.0.1'), transport: loopbackOnly }, extract: pool.page });
const page = (path: string, extra: Partial<PageTextDeps> = {}) => fetchPageSummary(`${server.origin}${path}`, { ...deps(), ...extra });

describe('fetchPageSummary', () => {
  it('reads a UTF-8 page: title, text, no script/style/nav/footer, whitespace collapsed', async () => {
    const s = await page('/utf8');
    expect(s.title).toBe('Spring sale & more');
    expect(s.text).toBe('Spring sale\n\nAll tea sets are 20% off until Friday.\n\nShipping is free over ¥99.');
    expect(s.truncated).toBe(false);
    expect(s.finalUrl).toBe(`${server.origin}/utf8`);
    for (const leaked of ['TRACKER', 'do-not-leak', 'inline script', 'color: red', 'Home', 'Enable JavaScript', '©']) {
      expect(s.text).not.toContain(leaked);
    }
  });

  it('decodes a GBK page declared in <meta http-equiv>', async () => {
    const s = await page('/gbk-meta');
    expect(s.title).toBe('茶具店');
    expect(s.text).toBe(GBK_TEXT);
  });

  it('decodes a page whose Content-Type says gb2312 (with GBK bytes)', async () => {
    const s = await page('/gb2312-header');
    expect(s.title).toBe('店铺公告');
    expect(s.text).toBe(GBK_TEXT);
  });

  it('falls back to GB18030 for an undeclared page that is not UTF-8', async () => {
    const s = await page('/gbk-undeclared');
    expect(s.title).toBe('无声明');
    expect(s.text).toBe(GBK_TEXT);
  });

  it('prefers og:title and reads WeChat article content although it is visibility:hidden', async () => {
    const s = await page('/og');
    expect(s.title).toBe('文章标题');
    expect(s.text).toBe('正文第一段。\n\n正文第二段。');
  });

  it('reads a table as one line per row, cells separated by " | " (colspan and rowspan ignored)', async () => {
    const s = await page('/table');
    expect(s.text).toBe('价格表\n\n2024\n商品 | 价格\n茶具 套装 | ¥99 |\n\n包邮\n\n| 单杯\n\n以上。');
  });

  it('caps the text at maxChars', async () => {
    const s = await page('/long', { maxChars: 100 });
    expect(s.text).toBe('长文本'.repeat(34).slice(0, 100));
    expect(s.truncated).toBe(true);
    const d = await page('/long');
    expect(d.text).toHaveLength(4000);
  });

  it('passes plain text through, collapsed and capped', async () => {
    const s = await page('/plain');
    expect(s).toMatchObject({ title: null, text: 'line one\n\nline two', truncated: false });
    expect((await page('/plain-gbk')).text).toBe(GBK_TEXT);
    expect((await page('/plain', { maxChars: 4 })).text).toBe('line');
  });

  it('treats a response without Content-Type that starts with < as HTML', async () => {
    expect((await page('/untyped')).text).toBe('no content type');
  });

  it.each(['/pdf', '/image'])('refuses non-page content (%s) with content_type', async (path) => {
    const e = await page(path).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FetchRefusedError);
    expect((e as FetchRefusedError).reason).toBe('content_type');
  });

  it('refuses a page over 1 MiB', async () => {
    const e = await page('/huge').catch((err: unknown) => err);
    expect((e as FetchRefusedError).reason).toBe('too_large');
  });

  it('survives hostile nesting quickly (the parser is quadratic in depth; input is cut at MAX_TAGS tags)', async () => {
    const started = Date.now();
    const s = await page('/deep');
    expect(s.text).toBe('visible before the trap');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses loopback without the allow-list (the default policy applies)', async () => {
    const e = await fetchPageSummary(`${server.origin}/utf8`, { fetchOptions: { transport: loopbackOnly }, extract: pool.page }).catch((err: unknown) => err);
    expect((e as FetchRefusedError).reason).toBe('address');
  });
});
