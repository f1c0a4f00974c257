/**
 * "Many customers waiting on a slow LLM" for `npm run bench` (key `slow`): BENCH_SLOW_CONVERSATIONS (5,000) distinct
 * OA customers each send one text at once-ish (every callback posted as fast as the server acks them over
 * BENCH_SLOW_CONNECTIONS connections), in active mode, to an agent whose LLM (the OpenAI-compatible fake, in this
 * process) sends its first byte after BENCH_SLOW_MS (30,000 ms). OA callbacks rather than one kf sync_msg page:
 * each OA message is its own HTTP callback and its own job, so the burst reaches the ack path, the queue and the
 * LLM calls at once, as 5,000 people writing at the same moment would; a kf burst arrives as a few callbacks and
 * pages of 1,000 read by one puller.
 * The agent: AGENTS `{provider: openai, maxConcurrency: BENCH_SLOW_MAX_CONCURRENCY (5,000), timeoutMs: slow + 30 s,
 * idleMs: slow + 10 s}` (a slow but healthy LLM: 60 s, the default deadline, at 30 s), routed from the bench OA. Waits until every customer has a custom/send or until
 * 3 × slow + 60 s. Figures: callbacks refused (non-2xx, must be 0), customers answered with the LLM's text and with
 * a fallback (REPLY_ON_TIMEOUT/ERROR), time from the first callback to the last answer (s), the LLM calls at once
 * at the fake (peak), the server's peak RSS (VmHWM, MiB) and /healthz latency meanwhile (event-loop health, ms).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeOpenAI } from '../../test/fakes/openai.js';
import { postBurst, statusSummary } from './burst.js';
import { BENCH_MP } from './creds.js';
import { startMpSide } from './mp-side.js';
import { peakRssMiB } from './proc.js';
import { mpServerEnv, startBenchServer } from './server.js';

const SLOW_MS = Number(process.env.BENCH_SLOW_MS ?? 30_000);
const CONVERSATIONS = Number(process.env.BENCH_SLOW_CONVERSATIONS ?? 5000);
const MAX_CONCURRENCY = Number(process.env.BENCH_SLOW_MAX_CONCURRENCY ?? 5000);
const CONNECTIONS = Number(process.env.BENCH_SLOW_CONNECTIONS ?? 200);
const TIMEOUT_MS = SLOW_MS * 3 + 60_000;
const PROBE_MS = 100;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** One store's run. Times: `…S` seconds, `…Ms` ms; NaN where nothing was measured. */
export interface SlowFigures {
  store: string;
  conversations: number;
  slowMs: number;
  maxConcurrency: number;
  /** callbacks answered other than 2xx, socket errors included (target 0) */
  refused: number;
  /** e.g. `200×5000` */
  statuses: string;
  /** from the first callback written to the last ack read, s */
  burstS: number;
  /** customers answered with the LLM's text */
  answered: number;
  /** customers answered with something else (REPLY_ON_TIMEOUT, REPLY_ON_ERROR) */
  fallbacks: number;
  /** what those were: the most frequent texts (first 20 characters) and their counts */
  fallbackTexts: Array<[string, number]>;
  /** from the first callback to the last answer seen, s (all answered or not) */
  lastAnswerS: number;
  allAnswered: boolean;
  /** most LLM requests the fake held at once (requests arriving within one slow period of each other) */
  llmPeak: number;
  peakRssMiB: number;
  healthzP99Ms: number;
  healthzMaxMs: number;
  failed?: string;
}

/**
 * Runs the burst against one store.
 * @param redisUrl REDIS_URL of the server ('' = memory store); a database of its own
 */
export async function measureSlow(store: string, redisUrl: string): Promise<SlowFigures> {
  const llm = await startFakeOpenAI({ apiKey: 'sk-bench' });
  llm.setDefault({ kind: 'answer', firstByteDelayMs: SLOW_MS });
  const side = await startMpSide();
  const base: SlowFigures = {
    store, conversations: CONVERSATIONS, slowMs: SLOW_MS, maxConcurrency: MAX_CONCURRENCY, refused: 0, statuses: '', burstS: NaN,
    answered: 0, fallbacks: 0, fallbackTexts: [], lastAnswerS: NaN, allAnswered: false, llmPeak: 0, peakRssMiB: NaN, healthzP99Ms: NaN, healthzMaxMs: NaN,
  };
  const agent = {
    provider: 'openai', baseUrl: llm.baseUrl, apiKey: 'sk-bench', maxConcurrency: MAX_CONCURRENCY,
    timeoutMs: clamp(SLOW_MS + 30_000, 1000, 600_000), idleMs: clamp(SLOW_MS + 10_000, 1000, 600_000),
  };
  const env = {
    ...mpServerEnv(side.apiUrl, 'active'),
    REDIS_URL: redisUrl,
    AGENTS: JSON.stringify({ slow: agent }),
    AGENT_ROUTES: JSON.stringify({ [`mp:${BENCH_MP.appId}`]: 'slow' }),
  };
  const server = await startBenchServer(env, `slow-LLM server (${store})`).catch((e: Error) => e);
  if (server instanceof Error) {
    side.close();
    await llm.close();
    return { ...base, failed: server.message };
  }
  const healthz: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await fetch(`${server.url}/healthz`).then((r) => r.arrayBuffer(), () => undefined);
      healthz.push(performance.now() - t);
      await sleep(PROBE_MS);
    }
  })();
  try {
    const tag = `slow${store.replace(/[^A-Za-z0-9]/g, '')}${Date.now().toString(36)}`;
    const requests = await side.callbacks(tag, CONVERSATIONS);
    const burst = await postBurst(server.url, requests, CONNECTIONS);
    process.stderr.write(`  [slow ${store}] ${CONVERSATIONS} callbacks in ${((burst.endedAt - burst.startedAt) / 1000).toFixed(1)} s: ${statusSummary(burst)}\n`);
    const deadline = burst.startedAt + TIMEOUT_MS;
    let s = await side.sent(tag, 'AI:');
    let lastReport = Date.now();
    while (s.customers < CONVERSATIONS && Date.now() < deadline) {
      await sleep(1000);
      s = await side.sent(tag, 'AI:');
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        process.stderr.write(`  [slow ${store}] ${((Date.now() - burst.startedAt) / 1000).toFixed(0)} s: ${s.customers}/${CONVERSATIONS} answered, RSS peak ${peakRssMiB(server.pid).toFixed(0)} MiB\n`);
      }
    }
    return {
      ...base,
      refused: burst.refused,
      statuses: statusSummary(burst),
      burstS: (burst.endedAt - burst.startedAt) / 1000,
      answered: s.matching,
      fallbacks: s.customers - s.matching,
      fallbackTexts: s.others,
      lastAnswerS: (s.lastAt - burst.startedAt) / 1000,
      allAnswered: s.customers >= CONVERSATIONS,
      llmPeak: peakInFlight(llm.requests.map((r) => r.receivedAt), SLOW_MS),
      peakRssMiB: peakRssMiB(server.pid),
      healthzP99Ms: pct(healthz, 99),
      healthzMaxMs: Math.max(...healthz),
    };
  } finally {
    probing = false;
    await probe;
    await server.stop();
    side.close();
    await llm.close();
  }
}

/** Most arrivals within any `holdMs` window: what the fake held at once, as each request waits `holdMs`. */
function peakInFlight(arrivals: number[], holdMs: number): number {
  const t = [...arrivals].sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while ((t[i] as number) - (t[j] as number) >= holdMs) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

/** Prints the table and the verdicts (no callback refused, all answered, peak RSS < 300 MiB). */
export function reportSlow(all: SlowFigures[]): void {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const first = all[0];
  if (!first) return;
  console.log(
    `\n${first.conversations} OA customers at once, LLM answers after ${first.slowMs / 1000} s (agent maxConcurrency ${first.maxConcurrency}; waited up to ${TIMEOUT_MS / 1000} s):`,
  );
  console.log('store   | refused | acks in | answered | fallbacks | last answer | LLM calls at once | peak RSS  | /healthz p99 / max');
  for (const x of all) {
    if (x.failed) {
      console.log(`${x.store.padEnd(7)} | server did not start: ${x.failed}`);
      continue;
    }
    console.log(
      `${x.store.padEnd(7)} | ${String(x.refused).padStart(7)} | ${f(x.burstS).padStart(5)} s | ${String(x.answered).padStart(8)} | ${String(x.fallbacks).padStart(9)} | ` +
        `${f(x.lastAnswerS).padStart(9)} s | ${String(x.llmPeak).padStart(17)} | ${f(x.peakRssMiB, 0).padStart(5)} MiB | ${f(x.healthzP99Ms)} / ${f(x.healthzMaxMs)} ms`,
    );
  }
  for (const x of all.filter((r) => !r.failed)) {
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const waves = x.llmPeak > 0 ? Math.ceil(x.conversations / x.llmPeak) : NaN;
    console.log(
      `${x.store}: none refused ${verdict(x.refused === 0)} (${x.statuses}); all answered by the LLM ${verdict(x.answered === x.conversations)}` +
        `${x.allAnswered ? '' : ` (${x.conversations - x.answered - x.fallbacks} unanswered at the timeout)`}` +
        `${x.fallbacks > 0 ? ` (fallbacks sent: ${x.fallbackTexts.map(([t, n]) => `${n} × "${t}…"`).join(', ')})` : ''}; peak RSS < 300 MiB ${verdict(x.peakRssMiB < 300)}` +
        `; at ${x.llmPeak} LLM calls at once the burst needs ≈ ${waves} × ${x.slowMs / 1000} s`,
    );
  }
}
