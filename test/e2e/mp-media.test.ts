import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { imageMsg, linkMsg, textMsg } from '../fakes/wechat-mp-push.js';
import { MP, answeredText, passiveText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { PNG_1X1 } from '../llm/contract-drivers.js';
import { startServer, type LocalServer } from '../media/local-server.js';

const API_KEY = 'sk-test-0123456789abcdef';

/** Official Account images and links (issue 6 items 2–3): MediaId → media/get → the vision request; links read SSRF-safe. */
describe('Official Account: images and links', () => {
  let h: MpHarness;
  let llm: FakeOpenAI;
  let web: LocalServer;
  const start = (env: Record<string, string> = {}) =>
    startMpHarness({ env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: API_KEY, ...env } });
  beforeEach(async () => {
    llm = await startFakeOpenAI({ apiKey: API_KEY });
    web = await startServer((req, res) => {
      if (req.url === '/a.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG_1X1);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<title>活动</title><p>满一百减二十。</p>');
    });
  });
  afterEach(async () => {
    await h?.close();
    await llm.close();
    await web.close();
  });

  it('active mode: an image is downloaded with media/get and reaches the vision model', async () => {
    h = await start();
    const mediaId = h.api.addMedia(PNG_1X1, 'image/png', 'p.png');
    const r = await h.deliver(imageMsg(MP, 'oImg', { mediaId }), 'safe');
    expect(answeredText(r, 'safe')).toBe('success');
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(llm.requests[0]?.images.map((i) => i.data)).toEqual([PNG_1X1]);
  });

  it('passive mode (with an AppSecret): the image still reaches the model; the answer is the passive reply', async () => {
    h = await start({ WECHAT_MP_REPLY_MODE: 'passive' });
    llm.script({ kind: 'answer', text: '这是一张**图片**。' });
    const mediaId = h.api.addMedia(PNG_1X1, 'image/png', 'p.png');
    const r = await h.deliver(imageMsg(MP, 'oImg2', { mediaId }), 'plaintext');
    expect(passiveText(r.attempts.at(-1)!.body, 'plaintext')).toBe('这是一张图片。');
    expect(llm.requests[0]?.images).toHaveLength(1);
  });

  it('OPENAI_VISION=false: REPLY_UNSUPPORTED, nothing downloaded', async () => {
    h = await start({ OPENAI_VISION: 'false' });
    const mediaId = h.api.addMedia(PNG_1X1, 'image/png', 'p.png');
    await h.deliver(imageMsg(MP, 'oImg3', { mediaId }), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(h.api.sent[0]?.content).toBe(h.config.replies.unsupported);
    expect(h.api.calls.filter((c) => c.api === 'media_get')).toHaveLength(0);
    expect(llm.requests).toHaveLength(0);
  });

  it('a link is read when allowed; refused by default without a connection, and still answered', async () => {
    h = await start({ FETCH_ALLOW_HOSTS: '127.0.0.1' });
    await h.deliver(linkMsg(MP, 'oLink', { url: `${web.origin}/a`, title: '看看', description: '优惠' }), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(JSON.stringify(llm.requests[0]?.body.messages)).toMatch(/满一百减二十/);
    await h.close();
    const seen = web.connections;
    h = await start();
    await h.deliver(linkMsg(MP, 'oLink2', { url: `${web.origin}/a`, title: '看看', description: '优惠' }), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(web.connections).toBe(seen);
    expect(JSON.stringify(llm.requests.at(-1)?.body.messages)).not.toMatch(/满一百减二十/);
  });

  it('active mode: an image in the answer is uploaded and sent with custom/send in its place; auto mode writes it as text', async () => {
    h = await start({ ANSWER_IMAGE_ALLOW_HOSTS: '127.0.0.1' });
    llm.script({ kind: 'answer', text: `请看：\n\n![示意图](${web.origin}/a.png)\n\n以上。` });
    await h.deliver(textMsg(MP, 'oOut', '给我看图'), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 3);
    expect(h.api.sent.map((m) => m.msgtype)).toEqual(['text', 'image', 'text']);
    expect(h.api.uploads).toHaveLength(1);
    expect(h.api.sent[1]?.media_id).toBe(h.api.uploads[0]?.media_id);
    expect(h.api.sent.map((m) => m.content)).toEqual(['请看：', undefined, '以上。']);
    await h.close();

    h = await start({ ANSWER_IMAGE_ALLOW_HOSTS: '127.0.0.1', WECHAT_MP_REPLY_MODE: 'auto' });
    llm.script({ kind: 'answer', text: `请看：\n\n![示意图](${web.origin}/a.png)` });
    const r = await h.deliver(textMsg(MP, 'oOut2', '给我看图'), 'plaintext');
    expect(passiveText(r.attempts.at(-1)!.body, 'plaintext')).toBe(`请看：\n\n示意图 (${web.origin}/a.png)`);
  });
});
