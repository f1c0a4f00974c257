/**
 * The demo's WeCom smart bots (企业微信智能机器人), one per mode, on the same server:
 *  - callback URL mode: a local stand-in plays WeCom, posting real encrypted JSON callbacks and then polling the
 *    stream ("refresh") like WeCom does, printing each snapshot as it grows;
 *  - long-connection mode: a local stand-in of WeCom's WebSocket endpoint; the server dials it, and the frames it
 *    pushes back on the message's req_id are printed as they arrive.
 * Offline, both bots are routed to a local OpenAI-compatible stand-in that streams its answer slowly (so the growth is
 * visible); with `--env` they use your default agent. Each message must end in exactly one finished stream.
 */
import { startFakeOpenAI, type FakeOpenAI } from '../../test/fakes/openai.js';
import { createFakeWecomBot } from '../../test/fakes/wecom-bot.js';
import { botGroupText, botText } from '../../test/fakes/wecom-bot-messages.js';
import { startFakeWecomBotWs, type FakeBotWsFrame, type FakeWecomBotWs } from '../../test/fakes/wecom-bot-ws.js';
import { REPLY_TIMEOUT_MS, USE_ENV } from './child.js';
import type { PartResult } from './mp.js';

/** Made-up credentials (the server runs on 127.0.0.1 only). */
export const BOT_CALLBACK = { botId: 'aibDemoCallback0000000000000001', token: 'DemoBotToken1', encodingAesKey: 'Zyxwvutsrqponmlkjihgfedcba9876543210ABCDEFG' };
export const BOT_WS = { botId: 'aibDemoLongConn0000000000000001', secret: 'demo-ws-secret-not-real' };

/** The stand-ins the bots need, started before the server (its env points at them). */
export interface BotStands {
  llm: FakeOpenAI | null;
  ws: FakeWecomBotWs;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts the long-connection stand-in and (offline) the streaming OpenAI-compatible stand-in on 127.0.0.1.
 * @returns them with the server env that points both bots at them (WECOM_BOTS, WECOM_BOT_WS_URL, AGENTS, AGENT_ROUTES)
 */
export async function startBotStands(): Promise<BotStands> {
  const ws = await startFakeWecomBotWs({ bots: { [BOT_WS.botId]: BOT_WS.secret } });
  const llm = USE_ENV ? null : await startFakeOpenAI({ apiKey: 'sk-demo' });
  // Streams the question back after "AI:", two characters every 120 ms: slow enough to watch it grow.
  llm?.setDefault({ kind: 'answer', chunkSize: 2, delayMs: 120 });
  const env: Record<string, string> = {
    WECOM_BOTS: JSON.stringify({
      [BOT_CALLBACK.botId]: { token: BOT_CALLBACK.token, encodingAesKey: BOT_CALLBACK.encodingAesKey },
      [BOT_WS.botId]: { mode: 'websocket', secret: BOT_WS.secret, welcome: '你好，我是长连接模式的智能机器人。' },
    }),
    WECOM_BOT_WS_URL: ws.url,
    ...(llm
      ? {
          AGENTS: JSON.stringify({ streaming: { provider: 'openai', baseUrl: llm.baseUrl, apiKey: 'sk-demo', model: 'demo-stream' } }),
          AGENT_ROUTES: JSON.stringify({ [`bot:${BOT_CALLBACK.botId}`]: 'streaming', [`bot:${BOT_WS.botId}`]: 'streaming' }),
        }
      : {}),
  };
  return { llm, ws, env, close: async () => Promise.all([ws.close(), llm?.close()]).then(() => undefined) };
}

const expected = (question: string): string | null => (USE_ENV ? null : `AI:${question}`);
const show = (s: string) => s.replace(/\s+/g, ' ').slice(0, 60);

/** Plays both bots against the server at `url`. */
export async function runBots(stands: BotStands, url: string): Promise<PartResult> {
  const failures: string[] = [];
  let got = 0;
  console.log('— WeCom smart bot (智能机器人), callback URL mode: WeCom polls the stream about once a second —\n');
  const fake = createFakeWecomBot({ baseUrl: url, ...BOT_CALLBACK, refreshIntervalMs: 250, streamLifetimeMs: REPLY_TIMEOUT_MS });
  for (const [who, draft, question] of [
    ['张三 (1:1)', botText('帮我写一句欢迎新同事的话', { userid: 'zhangsan' }), '帮我写一句欢迎新同事的话'],
    ['李四 (group, @助手)', botGroupText('这周五几点开周会？', { robotName: '助手', userid: 'lisi' }), '这周五几点开周会？'],
  ] as const) {
    console.log(`  [${who}] ${question}`);
    let last = '';
    const c = await fake.conversation(draft, {
      probeAfterFinish: false,
      onSnapshot: (s) => {
        if (s.content === last && !s.finish) return;
        last = s.content;
        console.log(`    ${String(Math.round(s.atMs)).padStart(5)} ms  ${s.finish ? 'finish' : 'stream'}  ${show(s.content)}`);
      },
    });
    const want = expected(question);
    if (!c.final.finish) failures.push(`callback bot: the stream for "${question}" never finished`);
    else if (want !== null && c.final.content !== want) failures.push(`callback bot: answered ${JSON.stringify(c.final.content)}, expected ${JSON.stringify(want)}`);
    else got += 1;
    console.log('');
  }

  console.log('— WeCom smart bot, long-connection mode: the server dialled WeCom, frames pushed on the req_id —\n');
  const ws = stands.ws;
  const until = Date.now() + 10_000;
  while (!ws.isConnected(BOT_WS.botId) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  if (!ws.isConnected(BOT_WS.botId)) failures.push('long-connection bot: the server never connected');
  else {
    const welcomeReq = ws.pushEvent(BOT_WS.botId, 'enter_chat');
    const [welcome] = await ws.waitForFrames((f) => f.reqId === welcomeReq, 1, 5000).catch(() => [] as FakeBotWsFrame[]);
    const welcomeText = (welcome?.body as { text?: { content?: string } } | undefined)?.text?.content;
    console.log(`  [王五 opens the chat] → aibot_respond_welcome_msg: ${welcomeText ?? '(none)'}`);
    if (welcomeText) got += 1;
    else failures.push('long-connection bot: no welcome');
    const question = '长连接模式需要公网地址吗？';
    console.log(`  [王五] ${question}`);
    const started = performance.now();
    const reqId = ws.pushMessage(BOT_WS.botId, { from: { userid: 'wangwu' }, text: { content: question } });
    const isFinal = (f: FakeBotWsFrame) => f.reqId === reqId && f.cmd === 'aibot_respond_msg' && (f.body as { stream: { finish: boolean } }).stream.finish;
    let printed = 0;
    const printNew = () => {
      const frames = ws.frames.filter((f) => f.reqId === reqId && f.cmd === 'aibot_respond_msg');
      for (const f of frames.slice(printed)) {
        const s = (f.body as { stream: { finish: boolean; content: string } }).stream;
        console.log(`    ${String(Math.round(f.at - (Date.now() - (performance.now() - started)))).padStart(5)} ms  ${s.finish ? 'finish' : 'stream'}  ${show(s.content)}`);
      }
      printed = frames.length;
    };
    const ticker = setInterval(printNew, 100);
    const [final] = await ws.waitForFrames(isFinal, 1, REPLY_TIMEOUT_MS).catch(() => [] as FakeBotWsFrame[]);
    clearInterval(ticker);
    printNew();
    const content = (final?.body as { stream?: { content?: string } } | undefined)?.stream?.content;
    const want = expected(question);
    if (content === undefined) failures.push('long-connection bot: the stream never finished');
    else if (want !== null && content !== want) failures.push(`long-connection bot: answered ${JSON.stringify(content)}, expected ${JSON.stringify(want)}`);
    else got += 1;
    console.log('');
  }
  return { failures, expected: 4, got };
}
