/**
 * OA callback figures for `npm run bench` (key `mp`): latency of distinct signed, encrypted (safe mode) OA text
 * callbacks at a fixed rate (BENCH_MP_RATE, default 1,000/s; open loop, paced.ts), against the built server with
 * the `echo` agent, per store:
 *  - active mode (WECHAT_MP_REPLY_MODE=active): the ack (`success`) — verify, dedup, hand-off as a durable job;
 *    the answer leaves later through custom/send, counted at the fake OA API after each run. ROLE=all answers in
 *    the same process, so at a rate beyond what one process can answer the acks wait behind the answering work;
 *    on Redis a ROLE=web server (no worker: the jobs stay queued) gives the ack path alone;
 *  - passive mode: the whole HTTP response, which carries the answer. It waits for the job's round trip: hand-off,
 *    a free job slot (64 per process), the agent (echo: none), the plan saved, the message's slot written, the
 *    held delivery woken (this process: at once; another process: it polls every 200 ms), the reply sealed.
 * Each figure is the median of the runs' p50 / p99; "from schedule" is coordinated-omission corrected. Units: ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { peakRssMiB } from './proc.js';
import { pacedLoad } from './paced.js';
import { startMpSide, type MpSide } from './mp-side.js';
import { mpServerEnv, startBenchServer } from './server.js';

const RATE = Number(process.env.BENCH_MP_RATE ?? 1000);
const ANSWER_WAIT_MS = 30_000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const median = (xs: number[]) => pct(xs, 50);

/** One store × reply mode at RATE callbacks/s; latencies in ms (median over the runs). */
export interface MpAckRow {
  store: string;
  mode: 'active' | 'passive';
  /** `web`: the ack path alone (ROLE=web, nothing answered) */
  role: 'all' | 'web';
  rate: number;
  p50: number;
  p99: number;
  /** p99 measured from each request's scheduled time (coordinated omission corrected) */
  p99FromSchedule: number;
  /** callbacks answered other than 200 (passive: 503 = the answer was not ready within WECHAT_MP_PASSIVE_HOLD_MS) */
  non2xx: number;
  sent: number;
  /** active: customers answered through custom/send within 30 s of their run; passive: 200 replies; NaN for ROLE=web */
  answered: number;
  peakRssMiB: number;
  /** the line that says why the server did not start, when it did not */
  failed?: string;
}

/**
 * Measures one store in both reply modes, each on a server of its own, and on Redis the ack path alone (ROLE=web).
 * @param redisUrls per server the REDIS_URL ('' = memory store); one database each, so one server's leftover jobs
 *   are never run by another; `web` absent: no ROLE=web row (the memory store has no web role)
 */
export async function measureMpAcks(
  store: string,
  redisUrls: { active: string; passive: string; web?: string },
  seconds: number,
  runs: number,
): Promise<MpAckRow[]> {
  const side = await startMpSide();
  try {
    const rows: MpAckRow[] = [];
    rows.push(await measureMode(side, store, 'active', 'all', redisUrls.active, seconds, runs));
    if (redisUrls.web) rows.push(await measureMode(side, store, 'active', 'web', redisUrls.web, seconds, runs));
    rows.push(await measureMode(side, store, 'passive', 'all', redisUrls.passive, seconds, runs));
    return rows;
  } finally {
    side.close();
  }
}

async function measureMode(
  side: MpSide,
  store: string,
  mode: 'active' | 'passive',
  role: 'all' | 'web',
  redisUrl: string,
  seconds: number,
  runs: number,
): Promise<MpAckRow> {
  const row: MpAckRow = { store, mode, role, rate: RATE, p50: NaN, p99: NaN, p99FromSchedule: NaN, non2xx: 0, sent: 0, answered: role === 'web' ? NaN : 0, peakRssMiB: NaN };
  const env = { ...mpServerEnv(side.apiUrl, mode), LLM_PROVIDER: 'echo', REDIS_URL: redisUrl, ROLE: role };
  const server = await startBenchServer(env, `mp ${mode} ${role} server (${store})`).catch((e: Error) => e);
  if (server instanceof Error) return { ...row, failed: server.message };
  const answers = mode === 'active' && role === 'all';
  try {
    const tagBase = `${store.replace(/[^A-Za-z0-9]/g, '')}${mode}${role}${Date.now().toString(36)}`;
    // Warm-up: JIT, keep-alive connections, the first access_token.
    await pacedLoad(server.url, await side.callbacks(`${tagBase}w`, RATE), RATE, 1000);
    if (answers) await answeredWithin(side, `${tagBase}w`, RATE, ANSWER_WAIT_MS);
    await sleep(1000);
    const p50: number[] = [];
    const p99: number[] = [];
    const p99co: number[] = [];
    for (let run = 0; run < runs; run++) {
      const tag = `${tagBase}r${run}`;
      const requests = await side.callbacks(tag, RATE * seconds);
      const r = await pacedLoad(server.url, requests, RATE, seconds * 1000);
      p50.push(pct(r.latencies, 50));
      p99.push(pct(r.latencies, 99));
      p99co.push(pct(r.fromSchedule, 99));
      row.non2xx += r.errors;
      row.sent += requests.length;
      if (mode === 'passive') row.answered += r.latencies.length;
      else if (answers) row.answered += await answeredWithin(side, tag, requests.length, ANSWER_WAIT_MS);
      process.stderr.write(`  [mp ${mode} ${role} ${store}] run ${run + 1}/${runs}: p50 ${p50.at(-1)?.toFixed(2)} ms, p99 ${p99.at(-1)?.toFixed(2)} ms, non-2xx ${r.errors}\n`);
      // Passive deliveries finish with their response; active ones were waited for above. A short gap still lets
      // the log writes and the queue's bookkeeping settle, as in the kf figures.
      await sleep(1000);
    }
    return { ...row, p50: median(p50), p99: median(p99), p99FromSchedule: median(p99co), peakRssMiB: peakRssMiB(server.pid) };
  } finally {
    await server.stop();
  }
}

/** Customers of `tag` answered (custom/send with the echo of their text) once all are, or after `timeoutMs`. */
async function answeredWithin(side: MpSide, tag: string, total: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await side.sent(tag, 'bench ');
    if (s.matching >= total || Date.now() > deadline) return s.matching;
    await sleep(200);
  }
}

/** Prints the OA table (ms) and the verdict against the kf ack target (p99 < 3 ms at 1,000/s) for active mode. */
export function reportMpAcks(rows: MpAckRow[]): void {
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(`\nOA callbacks at ${RATE}/s (distinct signed, encrypted text messages; echo agent; median of the runs):`);
  console.log('store   | mode, ROLE   | p50        | p99        | p99 from schedule | non-2xx | answered        | peak RSS');
  for (const r of rows) {
    const what = `${r.mode}, ${r.role}`.padEnd(12);
    if (r.failed) {
      console.log(`${r.store.padEnd(7)} | ${what} | server did not start: ${r.failed}`);
      continue;
    }
    const answered = Number.isNaN(r.answered) ? '— (no worker)' : `${r.answered}/${r.sent}`;
    console.log(
      `${r.store.padEnd(7)} | ${what} | ${f(r.p50).padStart(7)} ms | ${f(r.p99).padStart(7)} ms | ${f(r.p99FromSchedule).padStart(14)} ms | ` +
        `${String(r.non2xx).padStart(7)} | ${answered.padStart(15)} | ${f(r.peakRssMiB, 0)} MiB`,
    );
  }
  console.log('active: the ack (the answer leaves later through custom/send; ROLE=all answers in the same process, ROLE=web is the ack path alone);');
  console.log('passive: the response that carries the answer (a job\'s whole round trip)');
  for (const r of rows.filter((x) => x.mode === 'active' && !x.failed)) {
    const missing = r.sent - r.answered;
    console.log(`${r.store} active ${r.role}: ack p99 < 3 ms ${r.p99 < 3 ? 'met' : 'NOT met'}${missing > 0 ? `, ${missing} not answered within 30 s` : ''}`);
  }
}
