import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_PLACEHOLDER } from '../../src/channels/wecom-bot/routes.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { startFakeWecomBotWs, type FakeBotWsFrame, type FakeWecomBotWs } from '../fakes/wecom-bot-ws.js';
import { startWecomBotMediaServer, type WecomBotMediaServer } from '../fakes/wecom-bot-media.js';
import { newAeskey, newEncodingAesKey } from '../fakes/wecom-bot-reference-crypto.js';
import { startHarness, sleep, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

type Stream = { id: string; finish: boolean; content: string; msg_item?: unknown[] };
const streamOf = (f: FakeBotWsFrame) => (f.body as { stream: Stream }).stream;

/** Smart bot, long-connection mode, end to end: the server dials a fake WeCom long-connection endpoint. */
describe.each([
  ['memory', false],
  ['redis', redisUrl !== ''],
])('smart bot, long connection (%s store)', (_name, redis) => {
  let h: Harness;
  let llm: FakeOpenAI;
  let wecom: FakeWecomBotWs;
  let media: WecomBotMediaServer;
  const gptBot = 'aibWsGpt000000000000000000000001';
  const echoBot = 'aibWsEcho00000000000000000000001';

  beforeAll(async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-test' });
    // WeCom's media storage; long-connection media are encrypted with each URL's own aeskey, not a bot key.
    media = await startWecomBotMediaServer(newEncodingAesKey());
    wecom = await startFakeWecomBotWs({ bots: { [gptBot]: 'secret-gpt', [echoBot]: 'secret-echo' } });
    h = await startHarness({
      redis,
      env: {
        WECOM_BOTS: JSON.stringify({ [gptBot]: { mode: 'websocket', secret: 'secret-gpt', welcome: '欢迎' }, [echoBot]: { mode: 'websocket', secret: 'secret-echo' } }),
        WECOM_BOT_WS_URL: wecom.url,
        AGENTS: JSON.stringify({ gpt: { provider: 'openai', baseUrl: llm.baseUrl, apiKey: 'sk-test', model: 'm', vision: true } }),
        AGENT_ROUTES: JSON.stringify({ [`bot:${gptBot}`]: 'gpt' }),
      },
      overrides: { bot: { throttleMs: 40, pumpPollMs: 50 } },
    });
    const until = Date.now() + 10_000;
    while (!(wecom.isConnected(gptBot) && wecom.isConnected(echoBot)) && Date.now() < until) await sleep(20);
  });
  afterAll(async () => {
    await h.close();
    await wecom.close();
    await llm.close();
    await media.close();
  });

  it('downloads an image with its own aeskey and gives it to the vision agent', async () => {
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    const aeskey = newAeskey();
    const url = media.addMedia('ws.png', png, { aeskey });
    llm.script({ kind: 'answer', text: '看到图片了' });
    const reqId = wecom.pushMessage(gptBot, { msgid: 'CAIQwsimg', msgtype: 'image', image: { url, aeskey }, text: undefined });
    const [f] = await wecom.waitForFrames((x) => x.reqId === reqId && x.cmd === 'aibot_respond_msg' && streamOf(x).finish, 1, 10_000);
    expect(streamOf(f as FakeBotWsFrame).content).toBe('看到图片了');
    expect(llm.requests.at(-1)?.images[0]?.data?.equals(png)).toBe(true);
  });

  it('holds one connection per bot, and reports it', async () => {
    expect(wecom.openConnections(gptBot)).toBe(1);
    expect(wecom.openConnections(echoBot)).toBe(1);
    const metrics = await h.deps.metrics.registry.getSingleMetricAsString('bridge_bot_ws_connected');
    expect(metrics).toContain(`bridge_bot_ws_connected{bot="${gptBot}"} 1`);
  });

  it('streams growing frames on the callback req_id and ends with finish:true', async () => {
    const text = '长连接的回答，' + '一点一点地写出来。'.repeat(10);
    llm.script({ kind: 'answer', text, chunkSize: 3, delayMs: 15 });
    const reqId = wecom.pushMessage(gptBot, { msgid: 'CAIQws1', text: { content: '你好' } });
    const [final] = await wecom.waitForFrames((f) => f.reqId === reqId && f.cmd === 'aibot_respond_msg' && streamOf(f).finish, 1, 10_000);
    const frames = wecom.frames.filter((f) => f.reqId === reqId && f.cmd === 'aibot_respond_msg');
    expect(streamOf(frames[0] as FakeBotWsFrame)).toMatchObject({ content: BOT_PLACEHOLDER, finish: false });
    expect(streamOf(final as FakeBotWsFrame).content).toBe(text);
    const ids = new Set(frames.map((f) => streamOf(f).id));
    expect(ids.size).toBe(1);
    // Grows, throttled: several intermediate frames, far fewer than the ~60 deltas.
    const middle = frames.slice(1, -1).map((f) => streamOf(f).content);
    expect(middle.length).toBeGreaterThanOrEqual(3);
    expect(middle.length).toBeLessThan(40);
    for (const m of middle) expect(text.startsWith(m)).toBe(true);
    expect(wecom.violations).toEqual([]);
  });

  it('answers a repeated msgid from the same stream without asking the agent again', async () => {
    llm.script({ kind: 'answer', text: '一次就好', delayMs: 20 });
    const before = llm.requests.length;
    const first = wecom.pushMessage(gptBot, { msgid: 'CAIQwsdup', text: { content: '重复' } });
    await wecom.waitForFrames((f) => f.reqId === first && f.cmd === 'aibot_respond_msg' && streamOf(f).finish, 1, 10_000);
    const again = wecom.pushMessage(gptBot, { msgid: 'CAIQwsdup', text: { content: '重复' } });
    const [f2] = await wecom.waitForFrames((f) => f.reqId === again && f.cmd === 'aibot_respond_msg' && streamOf(f).finish, 1, 10_000);
    expect(streamOf(f2 as FakeBotWsFrame).content).toBe('一次就好');
    expect(llm.requests.length - before).toBe(1);
  });

  it('echo bot: the group @mention is removed, the rest answered exactly', async () => {
    const reqId = wecom.pushMessage(echoBot, { msgid: 'CAIQwsgrp', chattype: 'group', chatid: 'wrGroup1', text: { content: '@助手 问题 一' } });
    const [f] = await wecom.waitForFrames((x) => x.reqId === reqId && x.cmd === 'aibot_respond_msg' && streamOf(x).finish, 1, 10_000);
    expect(streamOf(f as FakeBotWsFrame).content).toBe('问题 一');
  });

  it('welcomes enter_chat with aibot_respond_welcome_msg within 5 s; a bot without a welcome sends none', async () => {
    const reqId = wecom.pushEvent(gptBot, 'enter_chat');
    const [w] = await wecom.waitForFrames((f) => f.reqId === reqId && f.cmd === 'aibot_respond_welcome_msg', 1, 5000);
    expect(w?.body).toEqual({ msgtype: 'text', text: { content: '欢迎' } });
    const none = wecom.pushEvent(echoBot, 'enter_chat');
    await sleep(300);
    expect(wecom.frames.filter((f) => f.reqId === none)).toEqual([]);
  });
});
