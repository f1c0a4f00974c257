import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BOT_PLACEHOLDER, BOT_UNKNOWN_STREAM } from '../../src/channels/wecom-bot/routes.js';
import { BOT_HANDOVER_NOTE } from '../../src/channels/wecom-bot/handler.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { createFakeWecomBot, newBotCredentials, type FakeWecomBot } from '../fakes/wecom-bot.js';
import { botEnterChat, botFile, botGroupText, botImage, botMixed, botText, botVideo, botVoice } from '../fakes/wecom-bot-messages.js';
import { startWecomBotMediaServer, type WecomBotMediaServer } from '../fakes/wecom-bot-media.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

/** Smart bot, callback URL mode, end to end: our server on 127.0.0.1, a fake WeCom polling it like WeCom. */
describe.each([
  ['memory', false],
  ['redis', redisUrl !== ''],
])('smart bot, callback mode (%s store)', (_name, redis) => {
  const a = newBotCredentials();
  const b = newBotCredentials();
  const c3 = newBotCredentials();
  let h: Harness;
  let llm: FakeOpenAI;
  let media: WecomBotMediaServer;
  let botA: FakeWecomBot;
  let botB: FakeWecomBot;
  let botC: FakeWecomBot;
  let images: Server;
  let imagesUrl = '';

  beforeAll(async () => {
    // An ordinary image host for the answer's markdown images (not WeCom's encrypted media).
    images = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    imagesUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
    llm = await startFakeOpenAI({ apiKey: 'sk-test' });
    media = await startWecomBotMediaServer(a.encodingAesKey);
    h = await startHarness({
      redis,
      env: {
        WECOM_BOTS: JSON.stringify({
          [a.botId]: { token: a.token, encodingAesKey: a.encodingAesKey, welcome: '你好，我是 A' },
          [b.botId]: { token: b.token, encodingAesKey: b.encodingAesKey },
          [c3.botId]: { token: c3.token, encodingAesKey: c3.encodingAesKey },
        }),
        AGENTS: JSON.stringify({
          gpt: { provider: 'openai', baseUrl: llm.baseUrl, apiKey: 'sk-test', model: 'm', vision: true },
          quick: { provider: 'openai', baseUrl: llm.baseUrl, apiKey: 'sk-test', model: 'm', timeoutMs: 800 },
        }),
        AGENT_ROUTES: JSON.stringify({ [`bot:${a.botId}`]: 'gpt', [`bot:${c3.botId}`]: 'quick' }),
        ANSWER_IMAGE_ALLOW_HOSTS: '127.0.0.1',
        LLM_TIMEOUT_MS: '3000',
      },
      overrides: { bot: { throttleMs: 40, handoverMs: 1500 } },
    });
    botA = createFakeWecomBot({ baseUrl: h.url, ...a, refreshIntervalMs: 30, streamLifetimeMs: 8000 });
    botB = createFakeWecomBot({ baseUrl: h.url, ...b, refreshIntervalMs: 30, streamLifetimeMs: 8000 });
    botC = createFakeWecomBot({ baseUrl: h.url, ...c3, refreshIntervalMs: 30, streamLifetimeMs: 8000 });
  });
  afterEach(() => llm.setDefault({ kind: 'answer' }));
  afterAll(async () => {
    await h.close();
    await llm.close();
    await media.close();
    await new Promise((r) => images.close(r));
  });

  it('verifies the URL with the decrypted echostr', async () => {
    const r = await botA.verifyUrl({ echoPlain: '1234567890+/=中文' });
    expect(r.status).toBe(200);
    expect(r.body).toBe(r.expected);
  });

  it('streams a growing answer, placeholder first, and finishes with the whole text', async () => {
    const text = '第一段：' + '流式回答逐渐变长。'.repeat(12);
    llm.script({ kind: 'answer', text, chunkSize: 3, delayMs: 15 });
    const c = await botA.conversation(botText('你好'));
    expect(c.firstFrame.stream).toMatchObject({ content: BOT_PLACEHOLDER, finish: false });
    expect(c.final).toMatchObject({ finish: true, content: text });
    const growing = c.snapshots.map((s) => s.content).filter((s) => s !== BOT_PLACEHOLDER);
    // The fake polls every 30 ms while deltas come every 15 ms: the stream must be seen growing, not appear at once.
    expect(new Set(growing.slice(0, -1)).size).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < growing.length; i++) expect(text.startsWith(growing[i - 1] as string) || growing[i - 1] === text).toBe(true);
    expect(c.expired).toBe(false);
  });

  it('keeps markdown, takes raw HTML out, hides reasoning', async () => {
    llm.script({ kind: 'answer', text: '## 标题\n\n- **要点** <script>x()</script>\n\n`<b>code</b>`', reasoning: '先想一想' });
    const c = await botA.conversation(botText('格式'));
    expect(c.final.content).toBe('## 标题\n\n- **要点** x()\n\n`<b>code</b>`');
    expect(c.snapshots.some((s) => s.content.includes('先想一想'))).toBe(false);
  });

  it('answers a repeated msgid with the same stream and never asks the agent twice', async () => {
    llm.script({ kind: 'answer', text: '只问一次', delayMs: 30 });
    const before = llm.requests.length;
    const first = await botA.send(botText('重复'));
    const again = await botA.send(first.message);
    expect(again.reply?.stream?.id).toBe(first.reply?.stream?.id);
    const c = await botA.conversation(botText('之后'));
    expect(c.final.finish).toBe(true);
    // `重复` once, `之后` once
    expect(llm.requests.length - before).toBe(2);
  });

  it('strips the @mention in groups; the echo agent of bot B answers exactly the rest', async () => {
    const c = await botB.conversation(botGroupText('你好  世界'));
    expect(c.final).toMatchObject({ finish: true, content: '你好  世界' });
    const v = await botB.conversation(botVoice('语音内容'));
    expect(v.final.content).toBe('语音内容');
    const u = await botB.conversation(botVideo('https://127.0.0.1:9/v.mp4'));
    expect(u.final.content).toBe(h.config.replies.unsupported);
  });

  it('answers a reset keyword with REPLY_ON_RESET; a hand-off keyword is just text in a WeCom chat', async () => {
    const reset = await botB.conversation(botText('重置'));
    expect(reset.final.content).toBe(h.config.replies.onReset);
    const handoff = await botB.conversation(botText('转人工'));
    expect(handoff.final.content).toBe('转人工');
  });

  it('downloads and decrypts an image for a vision agent (image and mixed)', async () => {
    const url = media.addMedia('p.png', PNG);
    llm.script({ kind: 'answer', text: '这是一张图' });
    const c = await botA.conversation(botImage(url));
    expect(c.final.content).toBe('这是一张图');
    const req = llm.requests.at(-1);
    expect(req?.images[0]?.data?.equals(PNG)).toBe(true);
    const url2 = media.addMedia('q.png', PNG);
    llm.script({ kind: 'answer', text: '图文' });
    const m = await botA.conversation(botMixed([{ text: '看看' }, { image: url2 }]));
    expect(m.final.content).toBe('图文');
    expect(JSON.stringify(llm.requests.at(-1)?.body)).toContain('看看');
    expect(llm.requests.at(-1)?.images).toHaveLength(1);
  });

  it('reads a text file for the agent', async () => {
    const url = media.addMedia('notes.txt', Buffer.from('文件里的内容 42'), { contentType: 'text/plain', filename: 'notes.txt' });
    llm.script({ kind: 'answer', text: '读完了' });
    const c = await botA.conversation(botFile(url));
    expect(c.final.content).toBe('读完了');
    expect(JSON.stringify(llm.requests.at(-1)?.body)).toContain('文件里的内容 42');
  });

  it('sends markdown images of the answer as pictures in the final frame', async () => {
    const imageUrl = `${imagesUrl}/answer.png`;
    llm.script({ kind: 'answer', text: `看图：\n\n![示意图](${imageUrl})\n\n完` });
    const c = await botA.conversation(botText('给我图'));
    expect(c.final.finish).toBe(true);
    expect(c.final.msg_item).toHaveLength(1);
    expect(c.final.content).not.toContain('![');
    expect(c.final.content).toContain('示意图');
  });

  it('replaces text that had shown with the fallback when the stream fails (the deadline here)', async () => {
    llm.script({ kind: 'answer', text: '开始写了，但是写得太慢了'.repeat(3), chunkSize: 2, delayMs: 100 });
    const c = await botC.conversation(botText('会超时'));
    expect(c.snapshots.some((s) => !s.finish && s.content.startsWith('开始写了'))).toBe(true);
    expect(c.final).toMatchObject({ finish: true, content: h.config.replies.onTimeout });
  });

  it('ends the stream with REPLY_ON_ERROR when the stream breaks after text (no retry once text showed)', async () => {
    const before = llm.requests.length;
    llm.script({ kind: 'drop', afterDeltas: 6 });
    const c = await botA.conversation(botText('会失败'));
    expect(c.final).toMatchObject({ finish: true, content: h.config.replies.onError });
    expect(llm.requests.length - before).toBe(1);
  });

  it('finishes a slow answer at the stream window with a note, then posts it to response_url', async () => {
    const responseUrl = media.newResponseUrl();
    llm.script({ kind: 'answer', text: '很慢的回答', delayMs: 400, chunkSize: 1 });
    const c = await botA.conversation(botText('慢', { response_url: responseUrl }));
    expect(c.final.finish).toBe(true);
    expect(c.final.content?.endsWith(BOT_HANDOVER_NOTE)).toBe(true);
    await media.waitFor(() => media.responses.length > 0, 8000, 'response_url post');
    expect(media.responses.at(-1)?.errcode).toBe(0);
    expect(media.responses.at(-1)?.body).toEqual({ msgtype: 'markdown', markdown: { content: '很慢的回答' } });
  });

  it('cuts an answer at 20480 bytes with the continue hint; 继续 gets the rest', async () => {
    const long = Array.from({ length: 300 }, (_, i) => `第${i}段：${'长'.repeat(30)}。`).join('\n\n');
    llm.script({ kind: 'answer', text: long, chunkSize: 4000 });
    const c = await botA.conversation(botText('长回答'));
    expect(Buffer.byteLength(c.final.content ?? '')).toBeLessThanOrEqual(20480);
    expect(c.final.content).toContain('继续');
    const rest = await botA.conversation(botText('继续'));
    expect(rest.final.content).toContain('第299段');
  });

  it('welcomes enter_chat with the bot welcome; a bot without one answers an empty 200', async () => {
    const r = await botA.send(botEnterChat());
    expect(r.reply).toEqual({ msgtype: 'text', text: { content: '你好，我是 A' } });
    const none = await botB.send(botEnterChat());
    expect([none.status, none.body]).toEqual([200, '']);
  });

  it('ends a refresh for an unknown stream with a notice', async () => {
    const m = await botA.send({ msgtype: 'stream', stream: { id: 'nosuchstream0000000000' } } as never);
    expect(m.reply?.stream).toMatchObject({ finish: true, content: BOT_UNKNOWN_STREAM });
  });
});
