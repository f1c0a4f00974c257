// Self-test of the fake WeCom smart bot against a trivially correct stand-in (wecom-bot-standin.ts) built on the
// reference crypto: URL verification, streamed conversations (growth, finish, expiry, failed polls), strict reply
// checks, hostile-input helpers, message shapes, and the media / response_url server. No server of ours involved.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESPONSE_URL_INVALID, RESPONSE_URL_USED } from './wecom-bot-media.js';
import {
  botEnterChat, botFeedback, botFile, botGroupText, botImage, botMixed, botText, botVoice, newBotMsgId,
} from './wecom-bot-messages.js';
import { botDecrypt, decryptMedia, decryptWithAeskey, newAeskey } from './wecom-bot-reference-crypto.js';
import { PLACEHOLDER, startStandIn, type StandIn } from './wecom-bot-standin.js';
import { BotReplyError, createFakeWecomBot, newBotCredentials, type FakeWecomBot } from './wecom-bot.js';

const CREDS = newBotCredentials();
let standIn: StandIn;
let bot: FakeWecomBot;

beforeEach(async () => {
  standIn = await startStandIn(CREDS);
  bot = createFakeWecomBot({ ...CREDS, baseUrl: standIn.url, refreshIntervalMs: 20, streamLifetimeMs: 5000 });
});
afterEach(async () => {
  await bot.close();
  await standIn.close();
});

describe('URL verification', () => {
  it('GETs the callback path with an encrypted echostr and reports the expected plaintext', async () => {
    const r = await bot.verifyUrl({ echoPlain: 'a+b/c=d 中' });
    expect(r).toMatchObject({ status: 200, body: 'a+b/c=d 中', expected: 'a+b/c=d 中' });
    expect(r.ms).toBeLessThan(1000);
    const d = await bot.verifyUrl();
    expect(d.expected).toMatch(/^[1-9]\d{18}$/);
    expect(d.body).toBe(d.expected);
  });
});

describe('conversation', () => {
  it('collects the placeholder then the growing snapshots and stops at finish', async () => {
    const seen: number[] = [];
    const c = await bot.conversation(botText('hello'), { onSnapshot: (_s, i) => void seen.push(i) });
    expect(c.snapshots.map((s) => [s.content, s.finish])).toEqual([
      [PLACEHOLDER, false], ['a', false], ['ab', false], ['abc', true],
    ]);
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(c).toMatchObject({ expired: false, polls: 3, failedPolls: [], final: { id: c.streamId, finish: true, content: 'abc' } });
    expect(c.firstFrame).toEqual({ msgtype: 'stream', stream: { id: c.streamId, finish: false, content: PLACEHOLDER } });
    const times = c.snapshots.map((s) => s.atMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times[3]! - times[0]!).toBeGreaterThanOrEqual(3 * 20 - 5);

    // The message, three refreshes and the after-finish probe.
    expect(standIn.received).toHaveLength(5);
    const [msg, ...refreshes] = standIn.received;
    expect(msg).toEqual(c.message);
    expect(Object.keys(msg!)).toEqual(['msgid', 'aibotid', 'chattype', 'from', 'response_url', 'msgtype', 'text']);
    expect(msg).toMatchObject({ aibotid: CREDS.botId, chattype: 'single', from: { userid: 'zhangsan' }, text: { content: 'hello' } });
    for (const r of refreshes) {
      expect(Object.keys(r)).toEqual(['msgid', 'aibotid', 'chattype', 'from', 'msgtype', 'stream']);
      expect(r).toMatchObject({ aibotid: CREDS.botId, chattype: 'single', from: { userid: 'zhangsan' }, stream: { id: c.streamId } });
    }
    expect(new Set(standIn.received.map((r) => r.msgid)).size).toBe(5);
  });

  it('keeps the group chat id on refreshes and sends the @mention', async () => {
    const c = await bot.conversation(botGroupText('天气', { chatid: 'wrGROUP1', userid: 'lisi' }), { probeAfterFinish: false });
    expect(c.message).toMatchObject({ chatid: 'wrGROUP1', chattype: 'group', from: { userid: 'lisi' }, text: { content: '@RobotA 天气' } });
    expect(standIn.received.slice(1).every((r) => r.chatid === 'wrGROUP1' && r.chattype === 'group')).toBe(true);
    expect(standIn.received).toHaveLength(4);
  });

  it("stops when WeCom's window closes on a stream that never finishes", async () => {
    standIn.config.finish = false;
    standIn.config.answer = 'abcdefghijklmnopqrstuvwxyz'.repeat(10);
    const slow = createFakeWecomBot({ ...CREDS, baseUrl: standIn.url, refreshIntervalMs: 30, streamLifetimeMs: 250 });
    const t0 = performance.now();
    const c = await slow.conversation(botText('never ends'));
    const took = performance.now() - t0;
    expect(c.expired).toBe(true);
    expect(c.final.finish).toBe(false);
    expect(c.snapshots.length).toBeGreaterThanOrEqual(3);
    // No refresh starts after the window; the last answer may land a little later on a loaded machine.
    expect(c.snapshots.every((s) => !s.finish && s.atMs < 250 + 1000)).toBe(true);
    expect(took).toBeGreaterThanOrEqual(240);
    expect(took).toBeLessThan(3000);
    expect(standIn.received).toHaveLength(c.polls + 1); // no probe after an expired stream
  });

  it('throws on a failed refresh by default, and records it with tolerateFailedPolls', async () => {
    standIn.config.misbehave = 'refresh-500-once';
    await expect(bot.conversation(botText('x'))).rejects.toThrow(/refresh answered HTTP 500/);
    standIn.config.misbehave = 'refresh-500-once';
    const c = await bot.conversation(botText('y'), { tolerateFailedPolls: true });
    expect(c.failedPolls).toEqual([expect.objectContaining({ status: 500 })]);
    expect(c.final).toMatchObject({ finish: true, content: 'abc' });
  });

  it('throws when a refresh answers another stream id, or a frame after finish differs', async () => {
    standIn.config.misbehave = 'other-stream-id';
    await expect(bot.conversation(botText('x'))).rejects.toThrow(/answered stream/);
    standIn.config.misbehave = 'changes-after-finish';
    await expect(bot.conversation(botText('y'))).rejects.toThrow(BotReplyError);
    await expect(bot.conversation(botText('z'))).rejects.toThrow(/after finish differs/);
  });

  it('a duplicate delivery (same msgid) gets the same stream', async () => {
    const first = await bot.send(botText('dup'));
    const again = await bot.send(first.message);
    expect(again.message.msgid).toBe(first.message.msgid);
    expect(again.reply?.stream?.id).toBe(first.reply?.stream?.id);
  });
});

describe('strict reply envelope', () => {
  it.each([
    ['wrong-nonce', /nonce .* is not the callback's/],
    ['bad-signature', /msgsignature .* is wrong/],
    ['extra-key', /envelope keys are/],
    ['receiveid', /receive id is "ww_corp"/],
    ['ms-timestamp', /not unix seconds/],
  ] as const)('%s → BotReplyError', async (misbehave, pattern) => {
    standIn.config.misbehave = misbehave;
    const p = bot.send(botText('hi'));
    await expect(p).rejects.toThrow(BotReplyError);
    await expect(bot.send(botText('hi'))).rejects.toThrow(pattern);
  });

  it('an empty 200 body is a null reply, and events get their own shapes', async () => {
    const enter = await bot.send(botEnterChat());
    expect(enter.reply).toEqual({ msgtype: 'text', text: { content: '欢迎' } });
    expect(Object.keys(enter.message)).toEqual(['msgid', 'create_time', 'aibotid', 'chattype', 'from', 'msgtype', 'event']);
    expect(enter.message.event).toEqual({ eventtype: 'enter_chat' });
    const fb = await bot.send(botFeedback({ id: 'fb1', type: 2, content: '不准确', inaccurate_reason_list: [2] }));
    expect(fb).toMatchObject({ status: 200, body: '', reply: null });
    expect(fb.message.event).toEqual({ eventtype: 'feedback_event', feedback_event: { id: 'fb1', type: 2, content: '不准确', inaccurate_reason_list: [2] } });
    expect(fb.message.response_url).toBeUndefined();
  });
});

describe('hostile input helpers', () => {
  it('sendRaw with a bad signature, a foreign receive id, non-JSON and a wrong path', async () => {
    const good = bot.seal(bot.complete(botText('x')));
    expect((await bot.sendRaw({ query: good.query, body: good.body })).status).toBe(200);
    const badSig = bot.seal(bot.complete(botText('x')), { msg_signature: '0'.repeat(40) });
    expect((await bot.sendRaw(badSig)).status).toBe(401);
    const foreign = bot.seal(bot.complete(botText('x')), { receiveid: 'wwcorp' });
    expect(botDecrypt(CREDS.encodingAesKey, foreign.encrypt).receiveid).toBe('wwcorp');
    expect((await bot.sendRaw(foreign)).status).toBe(401);
    expect((await bot.sendRaw({ query: good.query, body: 'not json' })).status).toBe(400);
    expect((await bot.sendRaw({ path: '/wecom/bot/callback/other', query: good.query, body: good.body })).status).toBe(404);
    const stale = bot.seal({ msgtype: 'text' }, { timestamp: String(Math.floor(Date.now() / 1000) - 3600) });
    expect(stale.query.timestamp).toMatch(/^\d{10}$/);
    expect((await bot.sendRaw({ query: 'a=%ZZ', body: Buffer.alloc(10, 0x7b) })).status).toBe(400); // raw query string, Buffer body
  });
});

describe('message builders', () => {
  it('build WeCom-shaped payloads with quote, mention and defaults', () => {
    expect(newBotMsgId()).toMatch(/^CAIQ[A-Za-z0-9+/]{27}=$/);
    const m = bot.complete(botMixed([{ text: '看图' }, { image: 'http://i/1' }], { mention: 'RobotA', chatid: 'wrG', quote: botVoice('语音') }));
    expect(m).toMatchObject({
      chattype: 'group', chatid: 'wrG', msgtype: 'mixed',
      mixed: { msg_item: [{ msgtype: 'text', text: { content: '@RobotA 看图' } }, { msgtype: 'image', image: { url: 'http://i/1' } }] },
      quote: { msgtype: 'voice', voice: { content: '语音' } },
    });
    expect(Object.keys(m)).toEqual(['msgid', 'aibotid', 'chatid', 'chattype', 'from', 'response_url', 'msgtype', 'mixed', 'quote']);
    expect(bot.complete(botImage('u', { response_url: null })).response_url).toBeUndefined();
    expect(bot.complete(botFile('f', { msgid: 'M1' }))).toMatchObject({ msgid: 'M1', file: { url: 'f' } });
    // Without a media server the response_url points at the closed loopback discard port.
    expect(bot.complete(botText('t')).response_url).toMatch(/^http:\/\/127\.0\.0\.1:9\/response\//);
  });
});

describe('media and response_url server', () => {
  it('serves encrypted media, counts requests, and expires', async () => {
    const media = await bot.startMediaServer();
    expect(await bot.startMediaServer()).toBe(media);
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const url = media.addMedia('p 1.png', png, { contentType: 'image/png' });
    expect(url).toMatch(/\/media\/p%201\.png\?sign=/);
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/png');
    const enc = Buffer.from(await r.arrayBuffer());
    expect(enc.length % 32).toBe(0);
    expect(decryptMedia(enc, CREDS.encodingAesKey)).toEqual(png);
    expect(media.mediaRequests('p 1.png')).toBe(1);

    const aeskey = newAeskey();
    const f = await fetch(media.addMedia('doc', Buffer.from('hello'), { aeskey, filename: '报告.pdf' }));
    // The file name travels as raw UTF-8 bytes (read back as latin1 by fetch).
    expect(Buffer.from(f.headers.get('content-disposition')!, 'latin1').toString('utf8')).toBe('attachment; filename="报告.pdf"');
    expect(decryptWithAeskey(Buffer.from(await f.arrayBuffer()), aeskey).toString()).toBe('hello');

    expect((await fetch(media.addMedia('old', png, { ttlMs: 0 }))).status).toBe(403);
    expect((await fetch(`${media.url}/media/none`)).status).toBe(404);
    expect(media.mediaRequests('old')).toBe(1);
  });

  it('response_url: one use, then a non-zero errcode; messages default to a fresh one', async () => {
    const media = await bot.startMediaServer();
    const msg = bot.complete(botText('long question'));
    expect(msg.response_url).toMatch(new RegExp(`^${media.url}/response/`));
    const post = (body: string): Promise<{ errcode: number }> =>
      fetch(msg.response_url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.json() as Promise<{ errcode: number }>);
    expect(await post('nope')).toMatchObject({ errcode: 47001 });
    expect(await post(JSON.stringify({ msgtype: 'text', text: { content: 'x' } }))).toMatchObject({ errcode: 40008 });
    expect(await post(JSON.stringify({ msgtype: 'markdown', markdown: { content: 'x'.repeat(20481) } }))).toMatchObject({ errcode: 45002 });
    const ok = JSON.stringify({ msgtype: 'markdown', markdown: { content: '**final**' } });
    expect(await post(ok)).toMatchObject({ errcode: 0 });
    expect(await post(ok)).toMatchObject({ errcode: RESPONSE_URL_USED });
    expect((await fetch(`${media.url}/response/never`, { method: 'POST', body: ok }).then((r) => r.json())) as unknown).toMatchObject({
      errcode: RESPONSE_URL_INVALID,
    });
    await media.waitFor(() => media.responses.length === 6, 1000, 'six response_url calls');
    expect(media.responses.filter((c) => c.errcode === 0)).toEqual([
      expect.objectContaining({ body: { msgtype: 'markdown', markdown: { content: '**final**' } }, contentType: 'application/json' }),
    ]);
  });
});
