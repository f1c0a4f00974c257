import { afterEach, describe, expect, it } from 'vitest';
import { customerKey, keys } from '../../src/store/keys.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { eventMsg, imageMsg, linkMsg, locationMsg, textMsg, videoMsg, voiceMsg } from '../fakes/wechat-mp-push.js';
import { sleep } from '../helpers/harness.js';
import { MODES, MP, answeredText, startMpHarness, type MpHarness } from '../helpers/mp-harness.js';

const WELCOME = '欢迎关注！有问题直接发消息给我。';
const CLICKS = JSON.stringify({ PRICE: '价格表：基础版 99 元/月。', HOURS: '营业时间 9:00-18:00' });
const passiveEnv = { WECHAT_MP_REPLY_MODE: 'passive', WELCOME_MESSAGE: WELCOME, WECHAT_MP_CLICK_REPLIES: CLICKS };

/** Events are answered at once as passive replies (no quota needed); message types map to what the agent takes. */
describe('Official Account events and message types', () => {
  let h: MpHarness;
  let llm: FakeOpenAI | null = null;
  afterEach(async () => {
    await h?.close();
    await llm?.close();
    llm = null;
  });

  for (const mode of MODES) {
    it(`${mode}: subscribe (also via a qrscene_ QR code) → WELCOME_MESSAGE as the passive reply; a re-delivery gets it again, counted once`, async () => {
      h = await startMpHarness({ env: { WELCOME_MESSAGE: WELCOME } });
      const follow = eventMsg(MP, 'oNew', 'subscribe', { EventKey: 'qrscene_123', Ticket: 'gQH47joAAAAAAAAAASxodHRw' });
      const r = await h.deliver(follow, mode, { kind: 'subscribe' });
      expect(answeredText(r, mode, 'oNew')).toBe(WELCOME);
      // WeChat re-delivers only when it did not get the reply: the same welcome again, nothing done twice.
      expect(answeredText(await h.deliver(follow, mode, { kind: 'subscribe' }), mode)).toBe(WELCOME);
      expect(h.api.sent).toEqual([]);
      const dedup = await h.deps.metrics.registry.getSingleMetricAsString('bridge_dedup_hits_total');
      expect(dedup).toContain('channel="mp"} 1');
      const m = await h.deps.metrics.registry.getSingleMetricAsString('bridge_replies_total');
      expect(m).toContain('channel="mp",kind="welcome"} 1');
    });
  }

  it('no WELCOME_MESSAGE → a subscribe gets success and nothing else', async () => {
    h = await startMpHarness();
    expect(answeredText(await h.deliver(eventMsg(MP, 'oNew', 'subscribe'), 'safe'), 'safe')).toBe('success');
  });

  it('CLICK → the configured text; an unknown key, VIEW and SCAN → success; in passive mode too', async () => {
    h = await startMpHarness({ env: passiveEnv });
    const click = (key: string) => h.deliver(eventMsg(MP, 'oMenu', 'CLICK', { EventKey: key }), 'safe', { kind: 'click' });
    expect(answeredText(await click('PRICE'), 'safe')).toBe('价格表：基础版 99 元/月。');
    expect(answeredText(await click('NOPE'), 'safe')).toBe('success');
    const view = eventMsg(MP, 'oMenu', 'VIEW', { EventKey: 'https://example.com/shop', MenuId: '401' });
    expect(answeredText(await h.deliver(view, 'safe'), 'safe')).toBe('success');
    expect(answeredText(await h.deliver(eventMsg(MP, 'oMenu', 'SCAN', { EventKey: '123' }), 'safe'), 'safe')).toBe('success');
    expect(h.api.calls).toEqual([]);
  });

  it('two different events in the same second are not merged; the same one twice is one event (FromUserName+CreateTime+Event+EventKey)', async () => {
    h = await startMpHarness({ env: passiveEnv });
    const t = Math.floor(Date.now() / 1000);
    const a = eventMsg(MP, 'oTwo', 'CLICK', { EventKey: 'PRICE', CreateTime: t });
    const b = eventMsg(MP, 'oTwo', 'CLICK', { EventKey: 'HOURS', CreateTime: t });
    expect(answeredText(await h.deliver(a, 'plaintext'), 'plaintext')).toBe('价格表：基础版 99 元/月。');
    expect(answeredText(await h.deliver(b, 'plaintext'), 'plaintext')).toBe('营业时间 9:00-18:00');
    expect(answeredText(await h.deliver(a, 'plaintext'), 'plaintext')).toBe('价格表：基础版 99 元/月。');
    const m = await h.deps.metrics.registry.getSingleMetricAsString('bridge_dedup_hits_total');
    expect(m).toContain('channel="mp"} 1');
    expect(await h.deps.metrics.registry.getSingleMetricAsString('bridge_replies_total')).toContain('channel="mp",kind="command"} 2');
  });

  it('LOCATION is stored, not answered; unsubscribe drops the conversation (the next turn starts fresh)', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-x' });
    h = await startMpHarness({ env: { LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-x' } });
    const loc = eventMsg(MP, 'oGeo', 'LOCATION', { Latitude: 23.137466, Longitude: 113.352425, Precision: 119.38504 });
    expect(answeredText(await h.deliver(loc, 'safe'), 'safe')).toBe('success');
    const stored = await h.deps.store.get(keys.mpLocation(customerKey('mp', MP.appId, 'oGeo')));
    expect(JSON.parse(stored ?? 'null')).toMatchObject({ latitude: '23.137466', longitude: '113.352425' });

    await h.deliver(textMsg(MP, 'oGeo', '我叫小王'), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 1);
    expect(answeredText(await h.deliver(eventMsg(MP, 'oGeo', 'unsubscribe'), 'safe'), 'safe')).toBe('success');
    expect(await h.deps.store.get(keys.mpLocation(customerKey('mp', MP.appId, 'oGeo')))).toBeNull();
    await h.deliver(textMsg(MP, 'oGeo', '我是谁'), 'safe');
    await h.api.waitFor(() => h.api.sent.length === 2);
    expect(llm.requests[1]?.body.messages).toEqual([{ role: 'user', content: '我是谁' }]);
  });

  it('echo agent: voice uses Recognition; voice without it, image, video, location and link get REPLY_UNSUPPORTED', async () => {
    h = await startMpHarness({ env: { WECHAT_MP_REPLY_MODE: 'passive' } });
    const unsupported = h.config.replies.unsupported;
    const say = async (f: ReturnType<typeof textMsg>) => answeredText(await h.deliver(f, 'safe'), 'safe');
    expect(await say(voiceMsg(MP, 'oTypes', { recognition: '明天开门吗' }))).toBe('明天开门吗');
    expect(await say(voiceMsg(MP, 'oTypes'))).toBe(unsupported);
    expect(await say(imageMsg(MP, 'oTypes'))).toBe(unsupported);
    expect(await say(videoMsg(MP, 'oTypes', { short: true }))).toBe(unsupported);
    expect(await say(locationMsg(MP, 'oTypes', { label: '广州塔' }))).toBe(unsupported);
    expect(await say(linkMsg(MP, 'oTypes', { title: '文章' }))).toBe(unsupported);
    expect(await say({ ...textMsg(MP, 'oTypes', 'x'), MsgType: 'hologram' })).toBe(unsupported);
    await sleep(50);
    expect(h.logs.lines.some((l) => l.msg === 'unknown OA message type')).toBe(true);
  });

  it('an LLM agent gets a location and a link as a short description', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-x' });
    h = await startMpHarness({
      env: { WECHAT_MP_REPLY_MODE: 'passive', LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-x' },
    });
    await h.deliver(locationMsg(MP, 'oDesc', { lat: 23.134521, lng: 113.358803, label: '广州塔' }), 'safe');
    await h.deliver(linkMsg(MP, 'oDesc', { title: '新品发布', description: '秋季新品', url: 'https://example.com/a' }), 'safe');
    const asked = llm.requests.map((r) => (r.body.messages as Array<{ content: string }>).at(-1)?.content);
    expect(asked[0]).toBe('[位置] 广州塔（纬度 23.134521，经度 113.358803）');
    expect(asked[1]).toBe('[链接]\n新品发布\n秋季新品\nhttps://example.com/a');
  });
});
