/**
 * (e) LLM faults: LLM_PROVIDER=openai against the fake OpenAI answering 500, hanging and dropping sockets for a
 *     batch of messages (LLM_TIMEOUT_MS=3000) → each gets exactly REPLY_ON_ERROR or REPLY_ON_TIMEOUT within the
 *     deadline + margin; the circuit breaker opens; once it is healthy again (breaker reset 30 s) answers are real.
 * (f) WeCom faults: 42001, -1, 45009 and HTTP 500 (before and after WeCom handled the call) on sync_msg/send_msg,
 *     plus slow answers → retries converge, one reply each.
 */
import { startLlmRouter } from './llm-router.js';
import { sleep } from './procs.js';
import { tallyOf } from './tally.js';
import { startWecomProxy } from './wecom-proxy.js';
import { Scenario, type Msg, type Result, type Suite } from './world.js';

const ON_ERROR = '[fallback] LLM error';
const ON_TIMEOUT = '[fallback] LLM timeout';
const LLM_TIMEOUT_MS = 3000;
/** pull + send + scheduling on a busy 2-core machine, on top of the LLM deadline */
const MARGIN_MS = 2000;
const BREAKER = 'bridge_llm_breaker_open{agent="default"}';

export async function llmFaults(suite: Suite): Promise<Result> {
  const s = await Scenario.open('e', '(e) LLM faults: 500 / hang / drop, then healthy', suite);
  let watching = true;
  try {
    const router = await startLlmRouter({
      e500: { kind: 'status', status: 500 },
      hang: { kind: 'hang' },
      drop: { kind: 'drop', afterDeltas: 1 },
      drop0: { kind: 'drop', afterDeltas: 0 },
    });
    s.defer(() => router.close());
    const bridge = await s.spawn('1', s.env({
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: router.baseUrl,
      OPENAI_API_KEY: 'sk-fault-suite',
      LLM_TIMEOUT_MS: String(LLM_TIMEOUT_MS),
      REPLY_ON_ERROR: ON_ERROR,
      REPLY_ON_TIMEOUT: ON_TIMEOUT,
    }));
    // One message per customer: the reply is matched by customer and no message queues behind another.
    s.attributeBy = 'user';
    const phase = new Map<Msg, 'fault' | 'recovering' | 'healthy'>();
    s.expectText = (m, c) =>
      phase.get(m) === 'fault' ? c === ON_ERROR || c === ON_TIMEOUT
      : phase.get(m) === 'recovering' ? c === ON_ERROR || c === `AI:${m.text}`
      : c === `AI:${m.text}`;
    const say = async (tag: string, kind: 'fault' | 'recovering' | 'healthy') => {
      const m = s.add(`wmE${String(s.msgs.length).padStart(4, '0')}`, `${tag}-${s.msgs.length}`);
      phase.set(m, kind);
      await s.deliver(s.callback(), () => bridge.url, m);
      return m;
    };
    const repliesTo = (m: Msg) => s.fake.sent.filter((x) => x.touser === m.user);

    // Breaker state, sampled until the end.
    let openAt: number | null = null;
    let closedAt: number | null = null;
    const watcher = (async () => {
      while (watching) {
        const v = await bridge.metric(BREAKER);
        if (v === 1 && openAt === null) openAt = Date.now();
        if (v === 0 && openAt !== null && closedAt === null) closedAt = Date.now();
        await sleep(200);
      }
    })();

    // 1. The faulty batch: hangs first (in flight before the breaker can open), then 500s, then dropped sockets.
    const tags = [...Array<string>(10).fill('hang'), ...Array<string>(10).fill('e500'), ...['drop', 'drop0'].flatMap((t) => Array<string>(5).fill(t))];
    const faulty: Msg[] = [];
    for (const tag of tags) {
      faulty.push(await say(tag, 'fault'));
      await sleep(30);
    }
    await s.fake.waitFor(() => faulty.every((m) => repliesTo(m).length > 0), LLM_TIMEOUT_MS + MARGIN_MS + 5000).catch(() => undefined);
    const late = faulty.filter((m) => {
      const r = repliesTo(m)[0];
      return r !== undefined && m.acceptedAt !== null && r.at - m.acceptedAt > LLM_TIMEOUT_MS + MARGIN_MS;
    });
    if (late.length > 0) s.failures.push(`${late.length} fallback replies later than LLM_TIMEOUT_MS + ${MARGIN_MS} ms`);
    const slowest = Math.max(...faulty.map((m) => (repliesTo(m)[0]?.at ?? NaN) - (m.acceptedAt ?? NaN)));
    const outcomes = faulty.map((m) => `${m.text.split('-')[0]}→${repliesTo(m)[0]?.content === ON_TIMEOUT ? 'timeout' : 'error'}`);
    s.notes.push(`faulty batch: ${tallyOf(outcomes)}; slowest fallback ${Math.round(slowest)} ms after its callback`);

    // 2. The LLM is healthy again: a customer a second until a real answer comes (breaker half-open after 30 s).
    const recoveredBy = Date.now() + 45_000;
    let healthyAt: number | null = null;
    while (healthyAt === null && Date.now() < recoveredBy) {
      const m = await say('ok', 'recovering');
      await s.fake.waitFor(() => repliesTo(m).length > 0, 8000).catch(() => undefined);
      if (repliesTo(m)[0]?.content === `AI:${m.text}`) healthyAt = Date.now();
      else await sleep(1000);
    }
    // 3. A healthy batch: every one gets its real answer.
    for (let i = 0; i < 10; i++) await say('ok', 'healthy');
    await s.settle(20_000);
    watching = false;
    await watcher;

    const t = (at: number | null) => (at === null ? 'never' : `${((at - s.started) / 1000).toFixed(1)} s`);
    s.notes.push(`breaker open seen at ${t(openAt)}, closed again at ${t(closedAt)}; first real answer at ${t(healthyAt)}`);
    s.notes.push(`LLM requests by tag (retries included): ${Object.entries(router.requests).map(([k, n]) => `${k}×${n}`).join(', ')}`);
    if (openAt === null) s.failures.push('the circuit breaker never showed open on /metrics');
    if (closedAt === null || (await bridge.metric(BREAKER)) !== 0) s.failures.push('the circuit breaker did not close again');
    if (healthyAt === null) s.failures.push('no real answer within 45 s after the LLM recovered');
    return s.result();
  } finally {
    watching = false;
    await s.close();
  }
}

export async function wecomFaults(suite: Suite): Promise<Result> {
  const s = await Scenario.open('f', '(f) WeCom faults: 42001/-1/45009/HTTP 500', suite);
  try {
    const proxy = await startWecomProxy(s.fake.url);
    s.defer(() => proxy.close());
    const env = s.env({ WECOM_API_BASE_URL: proxy.url, LLM_TIMEOUT_MS: '2000' });
    const bridges = [await s.spawn('1', env), await s.spawn('2', env)];
    const { fake } = s;
    // Faults injected while the messages come in; each line names when (ms after the first message).
    const schedule: Array<[number, () => void]> = [
      [0, () => fake.failNext('sync_msg', 42001, 1)],
      [0, () => fake.failNext('send_msg', 42001, 1)],
      [300, () => fake.failNext('send_msg', -1, 3)],
      [300, () => proxy.failNext('send_msg', 500, 2, 'before')],
      [700, () => fake.failNext('sync_msg', 45009, 2)],
      [700, () => fake.failNext('send_msg', 45009, 3)],
      // Twice in a row: refused again right after the refresh (a token race) must be retried, not dropped.
      [1000, () => fake.failNext('send_msg', 42001, 2)],
      [1200, () => proxy.failNext('sync_msg', 500, 2, 'before')],
      [1200, () => proxy.failNext('send_msg', 500, 3, 'after')],
      [1600, () => fake.expireAccessTokens()],
      [1600, () => fake.setDelay('send_msg', 500)],
      [2000, () => fake.failNext('sync_msg', -1, 2)],
      [2000, () => fake.failNext('send_msg', -1, 6)],
      [2400, () => proxy.failNext('sync_msg', 500, 1, 'after')],
      [2600, () => fake.setDelay('send_msg', 0)],
      [2600, () => fake.setDelay('sync_msg', 400)],
      [2800, () => fake.failNext('send_msg', 45009, 2)],
      [3000, () => fake.failNext('sync_msg', 42001, 1)],
      [3200, () => proxy.failNext('send_msg', 502, 2, 'after')],
      [3500, () => fake.setDelay('sync_msg', 0)],
    ];
    const t0 = Date.now();
    const injector = (async () => {
      for (const [at, inject] of schedule) {
        const wait = t0 + at - Date.now();
        if (wait > 0) await sleep(wait);
        inject();
      }
    })();
    // 80 messages from 40 customers (two each) over 4 s, callbacks alternating between the two instances.
    const deliveries: Promise<number>[] = [];
    for (let i = 0; i < 80; i++) {
      const wait = t0 + i * 50 - Date.now();
      if (wait > 0) await sleep(wait);
      const m = s.add(`wmF${String(i % 40).padStart(3, '0')}`, `f${i}`);
      deliveries.push(s.deliver(s.callback(), () => bridges[i % 2]!.url, m));
    }
    await Promise.all([...deliveries, injector]);
    await s.settle(45_000);
    const injected = tallyOf(proxy.injected.map((x) => `${x.api} ${x.status} ${x.when}`));
    s.notes.push(`HTTP errors injected: ${injected}; ${fake.gettokenCount()} gettoken`);
    s.notes.push(
      `logs: ${s.logCount('part was already delivered')} re-sends refused as already delivered, ` +
        `${s.logCount('job failed; will retry')} job retries, ${s.logCount('kf pull failed')} failed pulls, ` +
        `${s.logCount('WeCom refused the reply')} replies given up`,
    );
    return s.result();
  } finally {
    await s.close();
  }
}
