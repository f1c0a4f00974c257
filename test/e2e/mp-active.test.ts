import { afterEach, describe, expect, it } from 'vitest';
import { OA_TEXT_MAX_BYTES, utf8Bytes } from '../../src/format/split.js';
import { textMsg } from '../fakes/wechat-mp-push.js';
import { sleep } from '../helpers/harness.js';
import { MODES, MP, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';
import { redisClusterNodes, redisUrl } from '../helpers/redis.js';

const texts = (h: MpHarness, openid: string) => h.api.sent.filter((s) => s.touser === openid).map((s) => s.content);
const sendCalls = (h: MpHarness) => h.api.calls.filter((c) => c.api === 'custom_send');
const metric = async (h: MpHarness, name: string) => (await h.deps.metrics.registry.getSingleMetricAsString(name)) ?? '';

/** WECHAT_MP_REPLY_MODE=active (the default): `success` at once, the answer through message/custom/send. */
describe('Official Account, active mode', () => {
  let h: MpHarness;
  afterEach(async () => {
    await h?.close();
  });

  for (const mode of MODES) {
    it(`${mode}: acks 'success' at once, shows typing, then sends the echo through custom/send (stable_token)`, async () => {
      h = await startMpHarness();
      const r = await h.deliver(textMsg(MP, 'oUserA', `你好 ${mode}`), mode);
      expect(r.attempts).toHaveLength(1);
      expect(answeredText(r, mode)).toBe('success');
      expect(r.attempts[0]!.ms).toBeLessThan(1000);
      await h.api.waitFor(() => h.api.sent.length === 1);
      expect(texts(h, 'oUserA')).toEqual([`你好 ${mode}`]);
      const typing = h.api.typing.filter((t) => t.command === 'Typing');
      expect(typing).toHaveLength(1);
      expect(typing[0]!.at).toBeLessThanOrEqual(h.api.sent[0]!.at);
      expect(h.api.stableTokenRequests.map((t) => t.force_refresh)).toEqual([false]);
      expect(h.api.calls.some((c) => c.api === 'token')).toBe(false);
    });
  }

  for (const store of ['redis', 'redis cluster'] as const) {
    it.skipIf(store === 'redis' ? !redisUrl : !redisClusterNodes)(`${store}: the same MsgId delivered 3× concurrently and again later → one send (dedup by MsgId)`, async () => {
      h = await startMpHarness({ redis: store === 'redis' ? true : 'cluster' });
      const fields = textMsg(MP, 'oUserB', '只回答一次');
      const all = await Promise.all([h.deliver(fields, 'safe'), h.deliver(fields, 'safe'), h.deliver(fields, 'compatible')]);
      for (const r of all) expect(answeredText(r, 'safe')).toBe('success');
      await h.api.waitFor(() => h.api.sent.length === 1);
      await h.deliver(fields, 'plaintext');
      await sleep(300);
      expect(texts(h, 'oUserB')).toEqual(['只回答一次']);
      expect(await metric(h, 'bridge_dedup_hits_total')).toMatch(/channel="mp"} 3/);
    });
  }

  it('a long answer goes out in order as at most 5 parts of ≤ 2000 bytes, the fifth with the continue hint; 继续 gets the rest', async () => {
    h = await startMpHarness();
    const paragraphs = Array.from({ length: 14 }, (_, i) => `第${i + 1}段：${'客服回答内容'.repeat(40)}。`);
    const long = paragraphs.join('\n\n');
    await h.deliver(textMsg(MP, 'oLong', long), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 5);
    const parts = texts(h, 'oLong') as string[];
    for (const p of parts) expect(utf8Bytes(p)).toBeLessThanOrEqual(OA_TEXT_MAX_BYTES);
    expect(parts[0]!.startsWith('第1段')).toBe(true);
    expect(parts[4]).toMatch(/回复“继续”查看剩余部分/);
    await h.deliver(textMsg(MP, 'oLong', '继续'), 'safe');
    await h.api.waitFor(() => h.api.sent.length > 5);
    await sleep(200);
    const all = (texts(h, 'oLong') as string[]).join('\n\n').replace(/\n\n（内容较长[^）]*）/g, '');
    for (const p of paragraphs) expect(all).toContain(p.slice(0, 30));
    expect(all.indexOf('第14段')).toBeGreaterThan(all.indexOf('第13段'));
  });

  it('45015 (outside the window) ends the reply: one attempt, no retry loop, counted as failed', async () => {
    h = await startMpHarness();
    const push = textMsg(MP, 'oNever', '你好');
    h.api.unfollow('oNever');
    // Pushed without telling the fake: the customer never opened a window it knows of.
    const { buildMpPush, deliverLikeWechat } = await import('../fakes/wechat-mp-push.js');
    await deliverLikeWechat(h.plainUrl, '/wechat/mp/callback', () => buildMpPush(MP, 'plaintext', push));
    await h.api.waitFor(() => sendCalls(h).length === 1);
    await sleep(1200);
    expect(sendCalls(h).map((c) => c.errcode)).toEqual([45015]);
    expect(await metric(h, 'bridge_replies_total')).toMatch(/channel="mp",kind="failed"} 1/);
  });

  for (const errcode of [45047, 48001]) {
    it(`${errcode} ends the reply at once (one call, no retry); the next message is answered again`, async () => {
      h = await startMpHarness();
      h.api.failNext('custom_send', errcode);
      await h.deliver(textMsg(MP, 'oQuota', '第一条'), 'plaintext');
      await h.api.waitFor(() => sendCalls(h).length === 1);
      await sleep(1000);
      expect(sendCalls(h)).toHaveLength(1);
      expect(await metric(h, 'bridge_wechat_errors_total')).toContain(`errcode="${errcode}"`);
      await h.deliver(textMsg(MP, 'oQuota', '第二条'), 'plaintext');
      await h.api.waitFor(() => h.api.sent.length === 1);
      expect(texts(h, 'oQuota')).toEqual(['第二条']);
    });
  }

  it('a refused access_token (42001) is replaced once with force_refresh and the send retried: one message', async () => {
    h = await startMpHarness({ redis: redisUrl !== '' });
    await h.deliver(textMsg(MP, 'oTok', '一'), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 1);
    h.api.expireAccessTokens();
    await h.deliver(textMsg(MP, 'oTok', '二'), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 2);
    await sleep(200);
    expect(texts(h, 'oTok')).toEqual(['一', '二']);
    expect(h.api.stableTokenRequests.map((t) => t.force_refresh)).toEqual([false, true]);
  });
});
