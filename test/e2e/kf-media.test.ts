import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { OPEN_KFID, sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';
import { PNG_1X1 } from '../llm/contract-drivers.js';
import { startServer, type LocalServer } from '../media/local-server.js';
import { makePdf } from '../media/pdf-fixture.js';

const SETTLE_MS = 400;
const API_KEY = 'sk-test-0123456789abcdef';

/**
 * What the customer sends and gets beyond text (issue 6 items 1–4) through the real server: media downloaded from
 * the fake WeCom's media/get, the fake LLM recording what it was given, a local web server for links (reachable only
 * when FETCH_ALLOW_HOSTS allows 127.0.0.1) and answer images (only when ANSWER_IMAGE_ALLOW_HOSTS does), and
 * media/upload + image send_msg on the way out.
 */
describe('kf: images, files, links and other message types', () => {
  let h: Harness;
  let llm: FakeOpenAI;
  let web: LocalServer;
  const start = (env: Record<string, string> = {}) =>
    startHarness({
      redis: redisUrl !== '',
      env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: API_KEY, ...env },
    });
  const says = async (user: string, msgtype: string, body: Record<string, unknown>) => {
    h.fake.addCustomerMessage({ open_kfid: OPEN_KFID, external_userid: user, msgtype, body });
    await h.callback();
  };
  /** The last user message the LLM got, as text (content parts joined). */
  const lastAsked = () => {
    const messages = llm.requests.at(-1)?.body.messages as Array<{ role: string; content: unknown }>;
    const c = messages.at(-1)?.content;
    return typeof c === 'string' ? c : (c as Array<{ text?: string }>).map((p) => p.text ?? '').join('');
  };
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
    web = await startServer((req, res) => {
      if (req.url === '/a.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG_1X1);
      if (req.url === '/page') {
        return void res
          .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
          .end('<html><head><title>退货政策</title><script>evil()</script></head><body><p>七天无理由退货。</p></body></html>');
      }
      res.writeHead(404).end();
    });
  });
  afterEach(async () => {
    await h?.close();
    await llm.close();
    await web.close();
  });

  it('an image goes to a vision model as an image part; the answer comes back', async () => {
    h = await start();
    const media_id = h.fake.addMedia(PNG_1X1, 'image/png', 'photo.png');
    await says('wmI', 'image', { media_id });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    const images = llm.requests[0]?.images ?? [];
    expect(images).toHaveLength(1);
    expect(images[0]?.data).toEqual(PNG_1X1);
    expect(h.fake.calls.filter((c) => c.api === 'media_get')).toHaveLength(1);
    expect(textsTo(h.fake, 'wmI')).toHaveLength(1);
  });

  it('a model without vision (and echo) answers an image with REPLY_UNSUPPORTED, downloading nothing', async () => {
    h = await start({ OPENAI_VISION: 'false' });
    const media_id = h.fake.addMedia(PNG_1X1, 'image/png', 'photo.png');
    await says('wmJ', 'image', { media_id });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(textsTo(h.fake, 'wmJ')).toEqual([h.config.replies.unsupported]);
    expect(llm.requests).toHaveLength(0);
    expect(h.fake.calls.filter((c) => c.api === 'media_get')).toHaveLength(0);
  });

  it('an expired media_id is answered REPLY_UNSUPPORTED instead of silence', async () => {
    h = await start();
    await says('wmK', 'image', { media_id: 'expired-media-id' });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(textsTo(h.fake, 'wmK')).toEqual([h.config.replies.unsupported]);
  });

  it('a PDF file reaches the agent as its text; a Word file is unsupported', async () => {
    h = await start();
    const pdf = h.fake.addMedia(makePdf(['Invoice number 4711', 'Total 99 yuan']), 'application/pdf', 'invoice.pdf', 'file');
    await says('wmP', 'file', { media_id: pdf });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(lastAsked()).toMatch(/invoice\.pdf/);
    expect(lastAsked()).toMatch(/Invoice number 4711/);
    expect(lastAsked()).toMatch(/Total 99 yuan/);
    const doc = h.fake.addMedia(Buffer.from('PK\u0003\u0004 not really a docx'), 'application/octet-stream', 'a.docx', 'file');
    await says('wmP', 'file', { media_id: doc });
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    expect(textsTo(h.fake, 'wmP')[1]).toBe(h.config.replies.unsupported);
    expect(llm.requests).toHaveLength(1);
  });

  it('a plain-text file (served as text/plain by media/get) reaches the agent as its text', async () => {
    h = await start();
    const txt = h.fake.addMedia(Buffer.from('订单号：20261123\n问题：没收到货', 'utf8'), 'text/plain', 'note.txt', 'file');
    await says('wmX', 'file', { media_id: txt });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(lastAsked()).toMatch(/note\.txt/);
    expect(lastAsked()).toMatch(/订单号：20261123/);
  });

  it('a link is read when its host is allowed; by default a loopback link is refused without a connection', async () => {
    h = await start({ FETCH_ALLOW_HOSTS: '127.0.0.1' });
    await says('wmL', 'link', { title: '看看这个', desc: '商城页面', url: `${web.origin}/page`, pic_url: '' });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(lastAsked()).toMatch(/退货政策|看看这个/);
    expect(lastAsked()).toMatch(/七天无理由退货/);
    expect(lastAsked()).not.toMatch(/evil/);
    await h.close();

    const seen = web.connections;
    h = await start();
    await says('wmM', 'link', { title: '内网地址', desc: '', url: `${web.origin}/page` });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(web.connections).toBe(seen);
    // Still answered: the agent gets what WeChat showed (title and url), not the page.
    expect(lastAsked()).toMatch(/内网地址/);
    expect(lastAsked()).not.toMatch(/七天无理由退货/);
  });

  it('a customer over the rate limit makes us download and read nothing: no page fetch, no media/get', async () => {
    h = await start({ FETCH_ALLOW_HOSTS: '127.0.0.1', RATE_LIMIT_PER_CUSTOMER_PER_MIN: '1' });
    await says('wmRate', 'text', { content: '第一条' });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    const seen = web.connections;
    const media_id = h.fake.addMedia(makePdf(['报价单']), 'application/pdf', 'quote.pdf', 'file');
    await says('wmRate', 'link', { title: '看看', desc: '', url: `${web.origin}/page`, pic_url: '' });
    await says('wmRate', 'file', { media_id });
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    await sleep(SETTLE_MS);
    // Told once (the link), the file gets nothing; neither was fetched or read, and the LLM saw only the first.
    expect(textsTo(h.fake, 'wmRate')).toEqual(['AI:第一条', '您发送消息太频繁了，请稍等一分钟再发。']);
    expect(web.connections).toBe(seen);
    expect(h.fake.calls.filter((c) => c.api === 'media_get')).toHaveLength(0);
    expect(llm.requests).toHaveLength(1);
  });

  it('location and merged chat records reach the agent as descriptions; voice is unsupported', async () => {
    h = await start();
    await says('wmN', 'location', { latitude: 23.1, longitude: 113.3, name: '广州塔', address: '广州市海珠区' });
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(lastAsked()).toMatch(/广州塔.*广州市海珠区/);
    await says('wmN', 'merged_msg', {
      title: '群聊的聊天记录',
      item: [
        { sender_name: '张三', msgtype: 'text', send_time: 1, msg_content: JSON.stringify({ msgtype: 'text', text: { content: '订单号多少' } }) },
        { sender_name: '李四', msgtype: 'image', send_time: 2, msg_content: JSON.stringify({ msgtype: 'image', image: { md5sum: 'x' } }) },
      ],
    });
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    expect(lastAsked()).toMatch(/张三：订单号多少/);
    expect(lastAsked()).toMatch(/李四：\[图片\]/);
    const voice = h.fake.addMedia(Buffer.from('#!AMR\n0123456789'), 'audio/amr', 'v.amr', 'voice');
    await says('wmN', 'voice', { media_id: voice });
    await h.fake.waitFor(() => h.fake.sent.length >= 3);
    expect(textsTo(h.fake, 'wmN')[2]).toBe(h.config.replies.unsupported);
    expect(llm.requests).toHaveLength(2);
  });

  it('a menu click is answered like the text it carries', async () => {
    h = await start();
    h.fake.addCustomerText({ open_kfid: OPEN_KFID, external_userid: 'wmQ', content: '营业时间', menu_id: '101' });
    await h.callback();
    await h.fake.waitFor(() => h.fake.sent.length >= 1);
    expect(textsTo(h.fake, 'wmQ')).toEqual(['AI:营业时间']);
  });

  it('an image in the answer is uploaded and sent as an image message in its place', async () => {
    h = await start({ ANSWER_IMAGE_ALLOW_HOSTS: '127.0.0.1' });
    llm.script({ kind: 'answer', text: `这是**产品图**：\n\n![产品](${web.origin}/a.png)\n\n如需更多请告诉我。` });
    await h.customerSays('wmO', '发张图');
    await h.fake.waitFor(() => h.fake.sent.length >= 3);
    await sleep(SETTLE_MS);
    const sent = h.fake.sent.filter((s) => s.touser === 'wmO');
    expect(sent.map((s) => s.msgtype)).toEqual(['text', 'image', 'text']);
    expect(sent[0]?.content).toBe('这是产品图：');
    expect(sent[2]?.content).toBe('如需更多请告诉我。');
    expect(h.fake.uploads).toHaveLength(1);
    expect(h.fake.uploads[0]?.bytes).toEqual(PNG_1X1);
    expect(sent[1]?.media_id).toBe(h.fake.uploads[0]?.media_id);
  });

  it('an answer image on a refused host goes out as "alt (url)" text, in its place', async () => {
    // FETCH_ALLOW_HOSTS opens customers' links only: an answer's image needs ANSWER_IMAGE_ALLOW_HOSTS.
    h = await start({ FETCH_ALLOW_HOSTS: '127.0.0.1' });
    llm.script({ kind: 'answer', text: `看图：\n\n![产品](${web.origin}/a.png)` });
    await h.customerSays('wmT', '发张图');
    await h.fake.waitFor(() => h.fake.sent.length >= 2);
    await sleep(SETTLE_MS);
    expect(textsTo(h.fake, 'wmT')).toEqual(['看图：', `产品 (${web.origin}/a.png)`]);
    expect(h.fake.uploads).toHaveLength(0);
    expect(web.requests).toHaveLength(0);
  });

  it('a 9,000-byte markdown answer: 4 parts plus the continue hint, in order, no raw markdown; 继续 gets the rest', async () => {
    h = await start();
    const sections = Array.from({ length: 16 }, (_, i) => `## 第${i}节\n\n- **要点**：${'这是一段很长的说明文字。'.repeat(16)}\n- [链接](https://example.com/${i})`);
    const markdown = sections.join('\n\n');
    expect(Buffer.byteLength(markdown)).toBeGreaterThan(9000);
    llm.script({ kind: 'answer', text: markdown });
    await h.customerSays('wmU', '详细说说');
    await h.fake.waitFor(() => h.fake.sent.length >= 5);
    await sleep(SETTLE_MS);
    const parts = textsTo(h.fake, 'wmU');
    expect(parts).toHaveLength(5);
    expect(parts.every((p) => Buffer.byteLength(p) <= 2048)).toBe(true);
    expect(parts[4]).toMatch(/回复“继续”查看剩余部分/);
    const all = parts.join('\n');
    expect(all).not.toMatch(/\*\*|^#+ |\]\(/m);
    expect(all).toMatch(/• 要点：/);
    expect(all).toMatch(/链接 \(https:\/\/example\.com\/0\)/);
    expect(parts[0]?.startsWith('第0节')).toBe(true);
    await h.customerSays('wmU', '继续');
    await h.fake.waitFor(() => h.fake.sent.length >= 6);
    await sleep(SETTLE_MS);
    const rest = textsTo(h.fake, 'wmU').slice(5).join('\n');
    expect(rest).toMatch(/example\.com\/15\)$/);
    // Nothing lost and nothing twice: every section's link appears exactly once over all the messages.
    const everything = textsTo(h.fake, 'wmU').join('\n');
    for (let i = 0; i < 16; i++) expect(everything.split(`https://example.com/${i})`)).toHaveLength(2);
    expect(llm.requests).toHaveLength(1);
  });
});
