import { describe, expect, it } from 'vitest';
import { parseBots } from '../../src/config-bots.js';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { cutBytes } from '../../src/channels/wecom-bot/handler.js';
import { readBotInbound, streamIdOf, stripMention, toBotJob } from '../../src/channels/wecom-bot/inbound.js';
import { createSnapshotWriter } from '../../src/channels/wecom-bot/snapshot-writer.js';
import { createBotStreams, type StreamSnapshot } from '../../src/channels/wecom-bot/streams.js';
import { sanitizeMarkdown } from '../../src/format/sanitize-markdown.js';
import { createMemoryStore } from '../../src/store/memory.js';

const AES = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';

describe('WECOM_BOTS', () => {
  it('reads both modes with their welcome', () => {
    const { bots, problems } = parseBots(JSON.stringify({ b1: { token: 't', encodingAesKey: AES, welcome: 'hi' }, b2: { mode: 'websocket', secret: 's' } }));
    expect(problems).toEqual([]);
    expect(bots).toEqual([
      { mode: 'callback', botId: 'b1', token: 't', encodingAesKey: AES, welcome: 'hi' },
      { mode: 'websocket', botId: 'b2', secret: 's', welcome: null },
    ]);
  });

  it('names the bot and the field of every problem, never a secret', () => {
    const secret = 'verySecretValue123';
    let error: unknown;
    try {
      loadConfig({ WECOM_BOTS: JSON.stringify({ 'a:b': { token: 't', encodingAesKey: AES }, ok: { token: secret, encodingAesKey: 'short' }, ws: { mode: 'websocket' }, x: { token: 't', encodingAesKey: AES, extra: 1 } }) });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).message;
    expect(text).toContain('WECOM_BOTS["a:b"]: the key must be the BotID');
    expect(text).toContain('WECOM_BOTS["ok"]: encodingAesKey');
    expect(text).toContain('WECOM_BOTS["ws"]: secret');
    expect(text).toContain('WECOM_BOTS["x"]');
    expect(text).not.toContain(secret);
  });

  it('refuses what is not JSON with the position', () => {
    expect(parseBots('{"b":').problems[0]).toMatch(/^WECOM_BOTS: is not valid JSON: .* at line 1/);
  });
});

describe('smart-bot messages', () => {
  const base = { msgid: 'm1', aibotid: 'b', from: { userid: 'zhangsan' } };
  const job = (m: Record<string, unknown>) => {
    const inbound = readBotInbound({ ...base, ...m });
    if (inbound.kind !== 'message') throw new Error('not a message');
    return toBotJob(inbound, { botId: 'b', mode: 'callback', receivedAtMs: 1 });
  };

  it('strips the group @mention (with the U+2005 WeCom puts after it) and only in groups', () => {
    expect(job({ chattype: 'group', chatid: 'g1', msgtype: 'text', text: { content: '@智能助手\u2005你好 @张三 ' } }).text).toBe('你好 @张三 ');
    expect(job({ chattype: 'group', chatid: 'g1', msgtype: 'text', text: { content: '@bot  two spaces' } }).text).toBe('two spaces');
    expect(job({ chattype: 'single', msgtype: 'text', text: { content: '@bot hi' } }).text).toBe('@bot hi');
    expect(stripMention('no mention')).toBe('no mention');
  });

  it('reads voice, mixed, image, file, quote and refuses other types', () => {
    expect(job({ msgtype: 'voice', voice: { content: '语音转文字' } }).text).toBe('语音转文字');
    const mixed = job({ chattype: 'group', chatid: 'g', msgtype: 'mixed', mixed: { msg_item: [{ msgtype: 'text', text: { content: '@bot 看图' } }, { msgtype: 'image', image: { url: 'https://x/1' } }] } });
    expect(mixed.text).toBe('看图');
    expect(mixed.images).toEqual([{ url: 'https://x/1' }]);
    expect(job({ msgtype: 'image', image: { url: 'https://x/2', aeskey: 'k' } }).images).toEqual([{ url: 'https://x/2', aeskey: 'k' }]);
    expect(job({ msgtype: 'file', file: { url: 'https://x/f' } }).file).toEqual({ url: 'https://x/f' });
    expect(job({ msgtype: 'text', text: { content: 'q' }, quote: { msgtype: 'text', text: { content: '原话' } } }).quote).toBe('原话');
    expect(job({ msgtype: 'video', video: { url: 'https://x/v' } }).supported).toBe(false);
    expect(job({ msgtype: 'file', file: { url: 'not-a-url' } }).supported).toBe(false);
  });

  it('derives one stream id per (bot, msgid), group conversations per user and chat', () => {
    expect(streamIdOf('b', 'm1')).toBe(streamIdOf('b', 'm1'));
    expect(streamIdOf('b', 'm1')).not.toBe(streamIdOf('c', 'm1'));
    expect(streamIdOf('b', 'm1')).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('refuses ids that would break keys (400)', () => {
    expect(() => readBotInbound({ ...base, from: { userid: 'a:b' }, msgtype: 'text' })).toThrow(/from.userid/);
    expect(() => readBotInbound({ ...base, msgid: '', msgtype: 'text' })).toThrow(/msgid/);
    expect(() => readBotInbound({ msgtype: 'stream', stream: {} })).toThrow(/stream.id/);
    expect(() => readBotInbound([])).toThrow();
  });
});

describe('sanitizeMarkdown', () => {
  it('takes raw HTML out but keeps markdown and code as written', () => {
    const md = '# 标题\n<script>alert(1)</script>**粗体** <b>x</b><!-- c -->\n`<i>inline</i>`\n```html\n<div>block</div>\n```\n1 < 2 > 0';
    expect(sanitizeMarkdown(md)).toBe('# 标题\nalert(1)**粗体** x\n`<i>inline</i>`\n```html\n<div>block</div>\n```\n1 < 2 > 0');
  });

  it('is linear on hostile input (200 KB of unclosed tags in well under 50 ms)', () => {
    const hostile = '<a '.repeat(70_000);
    const t = performance.now();
    sanitizeMarkdown(hostile);
    expect(performance.now() - t).toBeLessThan(50);
  });
});

describe('cutBytes', () => {
  it('keeps whole characters within the byte limit', () => {
    expect(cutBytes('中文字', 7)).toBe('中文');
    expect(cutBytes('abc', 3)).toBe('abc');
    expect(Buffer.byteLength(cutBytes('é'.repeat(20_000), 20480))).toBeLessThanOrEqual(20480);
  });
});

describe('snapshot writer', () => {
  it('writes the first text at once, then at most once per throttle, and the final frame last', async () => {
    const streams = createBotStreams(createMemoryStore());
    const seen: StreamSnapshot[] = [];
    streams.watch('s1', (s) => seen.push(s));
    const w = createSnapshotWriter({ streams, streamId: 's1', botId: 'b', createdAtMs: 1, throttleMs: 100, prepare: (t) => t });
    w.update('a');
    await new Promise((r) => setImmediate(r));
    expect(seen.map((s) => s.content)).toEqual(['a']);
    for (let i = 2; i <= 50; i++) w.update('a'.repeat(i));
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.map((s) => s.content)).toEqual(['a', 'a'.repeat(50)]);
    w.update('late');
    await w.finish('final');
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.at(-1)).toMatchObject({ content: 'final', finish: true });
    expect(seen.map((s) => s.content)).not.toContain('late');
    expect((await streams.get('s1'))?.content).toBe('final');
    const seqs = seen.map((s) => s.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });
});
