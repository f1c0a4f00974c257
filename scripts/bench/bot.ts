/**
 * Smart-bot figures for `npm run bench` (issue 14), against the built server (dist/main.js) with one bot per mode
 * routed to a local OpenAI-compatible stand-in whose first token comes after a fixed delay:
 *  - first text: from a customer message to its first text being readable by a refresh (callback mode: the fake
 *    refreshes every 5 ms) or sent in an `aibot_respond_msg` frame (long connection). Target: p95 ≤ the LLM's
 *    first-token delay + 100 ms;
 *  - refresh answers: p50/p99 latency of refresh callbacks at 500/s (open loop, distinct signed requests, a finished
 *    stream). Target: p99 < 5 ms.
 * Run on the memory store and, when given, on Redis. Units: ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFakeOpenAI, type FakeOpenAI } from '../../test/fakes/openai.js';
import { createFakeWecomBot, type FakeWecomBot } from '../../test/fakes/wecom-bot.js';
import { botText } from '../../test/fakes/wecom-bot-messages.js';
import { startFakeWecomBotWs, type FakeWecomBotWs } from '../../test/fakes/wecom-bot-ws.js';
import { freePort } from '../../test/setup/services.js';
import { pacedLoad } from './paced.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIRST_TOKEN_MS = 200;
const MESSAGES = Number(process.env.BENCH_BOT_MESSAGES ?? 40);
const REFRESH_RATE = 500;
const CALLBACK = { botId: 'aibBenchCallback00000000000001', token: 'BenchBotToken1', encodingAesKey: 'Bench0123456789abcdefghijklmnopqrstuvwxyzAB' };
const WS = { botId: 'aibBenchLongConn00000000000001', secret: 'bench-secret' };
const PLACEHOLDER = '正在思考中…';
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** One store's smart-bot figures, all in ms (p50/p95/p99 of the runs described in the file header). */
export interface BotFigures {
  store: string;
  firstTokenMs: number;
  callbackFirstP50: number;
  callbackFirstP95: number;
  wsFirstP50: number;
  wsFirstP95: number;
  refreshP50: number;
  refreshP99: number;
  refreshErrors: number;
}

async function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/main.js', '--no-env-file'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return { child, url };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('bot bench: server did not start');
}

/** ms from posting a message to the first refresh that shows text other than the placeholder. */
async function callbackFirstText(bot: FakeWecomBot): Promise<number> {
  const started = performance.now();
  // A customer of its own per message: one customer's messages are answered in order, one after another.
  const first = await bot.send(botText(`问题 ${Math.random()}`, { userid: `bench${Math.floor(Math.random() * 1e9)}` }));
  const id = first.reply?.stream?.id;
  if (!id) throw new Error(`bot bench: no stream (${first.status})`);
  for (;;) {
    const r = await bot.send({ msgtype: 'stream', stream: { id } } as never);
    const content = r.reply?.stream?.content ?? '';
    if (content && content !== PLACEHOLDER) return performance.now() - started;
    if (performance.now() - started > 10_000) throw new Error('bot bench: no text within 10 s');
    await new Promise((res) => setTimeout(res, 5));
  }
}

/** ms from pushing a message on the long connection to the first frame with text other than the placeholder. */
async function wsFirstText(ws: FakeWecomBotWs): Promise<number> {
  const pushedAt = Date.now();
  const reqId = ws.pushMessage(WS.botId, { from: { userid: `bench${Math.floor(Math.random() * 1e9)}` }, text: { content: `问题 ${Math.random()}` } });
  const [frame] = await ws.waitForFrames(
    (f) => f.reqId === reqId && f.cmd === 'aibot_respond_msg' && ((f.body as { stream?: { content?: string } }).stream?.content ?? PLACEHOLDER) !== PLACEHOLDER,
    1,
    10_000,
  );
  return (frame?.at ?? NaN) - pushedAt;
}

/**
 * Distinct signed refreshes of one finished stream, at REFRESH_RATE for `seconds`, after a 1 s warm-up; the median
 * of `runs` runs' p50 and p99.
 */
async function refreshLoad(bot: FakeWecomBot, url: string, seconds: number, runs: number) {
  const c = await bot.conversation(botText('刷新压测'), { probeAfterFinish: false });
  const requests = Array.from({ length: REFRESH_RATE * seconds * (runs + 1) }, (_, i) => {
    const sealed = bot.seal({ msgid: `refresh${i}`, aibotid: CALLBACK.botId, chattype: 'single', from: { userid: 'bench' }, msgtype: 'stream', stream: { id: c.streamId } });
    const q = new URLSearchParams(sealed.query).toString();
    return { path: `/wecom/bot/callback/${CALLBACK.botId}?${q}`, body: sealed.body, headers: { 'content-type': 'application/json' } };
  });
  // Each run signs its own requests (a replayed request would only be WeCom's retry, but it is not what WeCom sends).
  const slice = (k: number, n: number) => requests.slice(k * REFRESH_RATE * seconds, k * REFRESH_RATE * seconds + n);
  await pacedLoad(url, slice(0, REFRESH_RATE), REFRESH_RATE, 1000);
  const p50s: number[] = [];
  const p99s: number[] = [];
  let errors = 0;
  for (let k = 1; k <= runs; k++) {
    const r = await pacedLoad(url, slice(k, REFRESH_RATE * seconds), REFRESH_RATE, seconds * 1000);
    p50s.push(pct(r.latencies, 50));
    p99s.push(pct(r.latencies, 99));
    errors += r.errors;
  }
  return { p50: pct(p50s, 50), p99: pct(p99s, 50), errors };
}

/** Measures one store ('' = memory). */
export async function measureBot(store: string, redisUrl: string, seconds: number, runs: number): Promise<BotFigures> {
  const llm: FakeOpenAI = await startFakeOpenAI({ apiKey: 'sk-bench' });
  llm.setDefault({ kind: 'answer', firstByteDelayMs: FIRST_TOKEN_MS, chunkSize: 4, delayMs: 10 });
  const ws = await startFakeWecomBotWs({ bots: { [WS.botId]: WS.secret } });
  const server = await startServer({
    REDIS_URL: redisUrl,
    WECOM_BOTS: JSON.stringify({ [CALLBACK.botId]: { token: CALLBACK.token, encodingAesKey: CALLBACK.encodingAesKey }, [WS.botId]: { mode: 'websocket', secret: WS.secret } }),
    WECOM_BOT_WS_URL: ws.url,
    LLM_PROVIDER: 'openai',
    OPENAI_BASE_URL: llm.baseUrl,
    OPENAI_API_KEY: 'sk-bench',
    RATE_LIMIT_PER_CUSTOMER_PER_MIN: '0',
  });
  try {
    const bot = createFakeWecomBot({ baseUrl: server.url, ...CALLBACK, refreshIntervalMs: 20 });
    const until = Date.now() + 10_000;
    while (!ws.isConnected(WS.botId) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await callbackFirstText(bot); // warm-up
    const cb: number[] = [];
    const wsTimes: number[] = [];
    // Five at a time: a few customers writing at once, not a queue of one.
    for (let i = 0; i < MESSAGES; i += 5) {
      cb.push(...(await Promise.all(Array.from({ length: 5 }, () => callbackFirstText(bot)))));
      wsTimes.push(...(await Promise.all(Array.from({ length: 5 }, () => wsFirstText(ws)))));
    }
    const refresh = await refreshLoad(bot, server.url, seconds, runs);
    return {
      store,
      firstTokenMs: FIRST_TOKEN_MS,
      callbackFirstP50: pct(cb, 50),
      callbackFirstP95: pct(cb, 95),
      wsFirstP50: pct(wsTimes, 50),
      wsFirstP95: pct(wsTimes, 95),
      refreshP50: refresh.p50,
      refreshP99: refresh.p99,
      refreshErrors: refresh.errors,
    };
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await ws.close();
    await llm.close();
  }
}

/** Prints the smart-bot table (ms) and each target's verdict (first text p95 ≤ first token + 100 ms; refresh p99 < 5 ms). */
export function reportBot(all: BotFigures[]): void {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
  console.log(`\nsmart bot — first text after a ${FIRST_TOKEN_MS} ms first token (${MESSAGES} messages per mode, 5 at once); refreshes at ${REFRESH_RATE}/s, median of the runs`);
  console.log('store   | callback first text p50 / p95 | long connection first frame p50 / p95 | refresh p50 / p99 | errors');
  for (const x of all) {
    console.log(
      `${x.store.padEnd(7)} | ${f(x.callbackFirstP50).padStart(8)} / ${f(x.callbackFirstP95).padStart(6)} ms        | ${f(x.wsFirstP50).padStart(8)} / ${f(x.wsFirstP95).padStart(6)} ms                | ${f(x.refreshP50).padStart(5)} / ${f(x.refreshP99).padStart(5)} ms | ${x.refreshErrors}`,
    );
  }
  for (const x of all) {
    const budget = x.firstTokenMs + 100;
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(
      `${x.store}: first text p95 ≤ ${budget} ms: callback ${verdict(x.callbackFirstP95 <= budget)}, long connection ${verdict(x.wsFirstP95 <= budget)}; refresh p99 < 5 ms ${verdict(x.refreshP99 < 5)}`,
    );
  }
}
