/**
 * (a) WeChat retries: every callback delivered 3× at once and once more 2 s later.
 * (b) Several instances: 3 server processes on one Redis, 500 customers, callbacks round-robin.
 */
import { sleep } from './procs.js';
import { pool, Scenario, type Result, type Suite } from './world.js';

export async function retries(suite: Suite): Promise<Result> {
  const s = await Scenario.open('a', '(a) WeChat retries (3× at once + 1× after 2 s)', suite);
  try {
    const bridge = await s.spawn('1', s.env());
    const pick = () => bridge.url;
    const deliveries: Promise<unknown>[] = [];
    // 50 messages from 25 customers (two each), one every 50 ms.
    for (let i = 0; i < 50; i++) {
      const m = s.add(`wmA${String(i % 25).padStart(3, '0')}`, `a${i}`);
      const cb = s.callback();
      deliveries.push(Promise.all([1, 2, 3].map(() => s.deliver(cb, pick, m))));
      deliveries.push(sleep(2000).then(() => s.deliver(cb, pick, m)));
      await sleep(50);
    }
    await Promise.all(deliveries);
    await s.settle(30_000);
    const dedup = await bridge.metric('bridge_dedup_hits_total{channel="kf"}');
    s.notes.push(`200 callbacks for 50 messages; ${s.fake.calls.filter((c) => c.api === 'sync_msg').length} sync_msg calls; msgid dedup hits ${dedup ?? 0}`);
    return s.result();
  } finally {
    await s.close();
  }
}

export async function instances(suite: Suite): Promise<Result> {
  const s = await Scenario.open('b', '(b) 3 instances (3× all), one Redis', suite);
  try {
    // ROLE=worker is not available in this version (config.ts refuses it): three ROLE=all processes.
    const bridges = await Promise.all(['1', '2', '3'].map((n) => s.spawn(n, s.env({ ROLE: 'all' }))));
    const users = Array.from({ length: 500 }, (_, i) => `wmB${String(i).padStart(4, '0')}`);
    let rr = 0;
    const pick = () => bridges[rr++ % bridges.length]!.url;
    await pool(users, 16, async (user, i) => {
      const m = s.add(user, `b${i}`);
      await s.deliver(s.callback(), pick, m);
    });
    await s.settle(60_000);
    const pulls = s.fake.calls.filter((c) => c.api === 'sync_msg').length;
    s.notes.push(`${pulls} sync_msg calls, ${s.fake.gettokenCount()} gettoken for 3 processes`);
    s.notes.push('ROLE=worker is refused by this version (config.ts), so all three are ROLE=all (web + worker)');
    return s.result();
  } finally {
    await s.close();
  }
}
