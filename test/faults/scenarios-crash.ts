/**
 * (c) Crashes: 2 instances, 300 messages over ~10 s, kill -9 of a random instance at 3 random moments, each
 *     restarted with the same env. A killed process's running jobs go back to wait once their BullMQ lock (LLM_TIMEOUT_MS
 *     + 30 s = 32 s here) has expired and the next 5 s stalled check has passed, so this scenario takes ~45–60 s by design.
 * (d) Redis crash: 1 instance, 200 messages over ~6 s, kill -9 of redis-server in the middle and a restart on the
 *     same port and AOF data ~2 s later; callbacks during the outage get 503 and are retried until 200.
 */
import type { Bridge } from './procs.js';
import { sleep } from './procs.js';
import { tallyOf } from './tally.js';
import { Scenario, type Msg, type Result, type Suite } from './world.js';

/** `n` sorted moments in [from, to) ms, at least `gap` apart. */
function moments(rand: () => number, n: number, from: number, to: number, gap: number): number[] {
  for (;;) {
    const t = Array.from({ length: n }, () => from + rand() * (to - from)).sort((a, b) => a - b);
    if (t.every((v, i) => i === 0 || v - t[i - 1]! >= gap)) return t.map(Math.round);
  }
}

/** Adds `count` messages evenly over `spanMs` (customer = i % customers) and posts each callback via `pick`. */
async function feed(s: Scenario, o: { count: number; customers: number; spanMs: number; prefix: string; pick: () => string }): Promise<void> {
  const t0 = Date.now();
  const deliveries: Promise<number>[] = [];
  for (let i = 0; i < o.count; i++) {
    const wait = t0 + (i * o.spanMs) / o.count - Date.now();
    if (wait > 0) await sleep(wait);
    const m: Msg = s.add(`wm${o.prefix.toUpperCase()}${String(i % o.customers).padStart(4, '0')}`, `${o.prefix}${i}`);
    deliveries.push(s.deliver(s.callback(), o.pick, m));
  }
  await Promise.all(deliveries);
}

/** Round robin over the instances that are up (a callback to one being restarted is retried elsewhere). */
function roundRobin(bridges: Bridge[]): () => string {
  let rr = 0;
  return () => {
    for (let k = 0; k < bridges.length; k++) {
      const b = bridges[rr++ % bridges.length]!;
      if (b.alive) return b.url;
    }
    return bridges[0]!.url;
  };
}

export async function appCrashes(suite: Suite): Promise<Result> {
  const s = await Scenario.open('c', '(c) crashes: 2 instances, 3× kill -9', suite);
  try {
    const env = s.env({ LLM_TIMEOUT_MS: '2000' });
    const bridges = [await s.spawn('1', env), await s.spawn('2', env)];
    // WeCom answers slowly (it acts on arrival; only the answer is held), so a kill finds pulls and sends in flight,
    // among them sends WeCom accepted that the killed process never heard of.
    s.fake.setDelay('send_msg', 250);
    s.fake.setDelay('sync_msg', 100);
    const FEED_MS = 10_000;
    const at = moments(suite.rand, 3, 600, FEED_MS - 300, 1500);
    const victims = at.map(() => Math.floor(suite.rand() * bridges.length));
    const t0 = Date.now();
    const killer = (async () => {
      for (const [i, when] of at.entries()) {
        const wait = t0 + when - Date.now();
        if (wait > 0) await sleep(wait);
        const b = bridges[victims[i]!]!;
        await b.kill9();
        const down = Date.now();
        await b.start();
        s.notes.push(`kill -9 ${b.name} at ${((down - t0) / 1000).toFixed(1)} s, healthy again after ${Date.now() - down} ms`);
      }
    })();
    // 300 messages from 100 customers (three each), evenly over 10 s.
    await Promise.all([feed(s, { count: 300, customers: 100, spanMs: FEED_MS, prefix: 'c', pick: roundRobin(bridges) }), killer]);
    const fed = Date.now();
    await s.settle(80_000);
    s.notes.push(`after the last message: ${((Date.now() - fed) / 1000).toFixed(1)} s until every message was answered and no job was left`);
    s.notes.push(
      `logs: ${s.logCount('part was already delivered')} re-sends refused as already delivered, ` +
        `${s.logCount('lease lost')} lease losses, ${s.logCount('job failed; will retry')} job retries`,
    );
    return s.result();
  } finally {
    await s.close();
  }
}

export async function redisCrash(suite: Suite): Promise<Result> {
  const s = await Scenario.open('d', '(d) Redis crash: kill -9, restart after 2 s', suite);
  try {
    const bridge = await s.spawn('1', s.env({ LLM_TIMEOUT_MS: '2000' }));
    // Slow WeCom answers, so that Redis dies under pulls and sends in flight (as in (c)).
    s.fake.setDelay('send_msg', 250);
    s.fake.setDelay('sync_msg', 100);
    const FEED_MS = 6000;
    const killAt = Math.round(2500 + suite.rand() * 1000);
    const t0 = Date.now();
    const outage = (async () => {
      await sleep(killAt);
      await suite.redis.kill9();
      const down = Date.now();
      await sleep(2000);
      await suite.redis.start();
      s.notes.push(`redis-server killed -9 at ${((down - t0) / 1000).toFixed(1)} s, answering again after ${Date.now() - down} ms`);
    })();
    // 200 messages from 100 customers (two each), evenly over 6 s, all to the one instance.
    await Promise.all([feed(s, { count: 200, customers: 100, spanMs: FEED_MS, prefix: 'd', pick: () => bridge.url }), outage]);
    const fed = Date.now();
    await s.settle(70_000);
    s.notes.push(`after the last message: ${((Date.now() - fed) / 1000).toFixed(1)} s until every message was answered and no job was left`);
    const other = s.refusals.filter((r) => r !== 'HTTP 503');
    if (!s.refusals.includes('HTTP 503')) s.failures.push('no callback met the outage (no 503 seen)');
    if (other.length > 0) s.failures.push(`callbacks refused otherwise than 503: ${tallyOf(other)}`);
    const ready = await fetch(`${bridge.url}/readyz`).then((r) => r.status, () => 0);
    if (ready !== 200) s.failures.push(`/readyz answers ${ready} after Redis came back`);
    s.notes.push(
      `logs: ${s.logCount('cannot record the callback')} callbacks refused (503), ${s.logCount('kf pull failed')} failed pulls, ` +
        `${s.logCount('job failed; will retry')} job retries, ${s.logCount('part was already delivered')} re-sends refused as already delivered`,
    );
    return s.result();
  } finally {
    await s.close();
  }
}
