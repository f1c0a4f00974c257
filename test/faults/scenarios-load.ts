/**
 * (a) WeChat retries: every callback delivered 3× at once and once more 2 s later.
 * (b) Several instances: 2× ROLE=all + 1× ROLE=worker on one Redis, 500 customers, callbacks round-robin over
 *     the two that serve routes (a worker serves none); (g) the same with 1× ROLE=web + 2× ROLE=worker; (h) (b) on a
 *     3-master Redis Cluster.
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

/**
 * Several processes on one Redis: `routed` serve the callbacks (round-robin), `workers` only take work from Redis.
 * @param key / title the table row
 */
async function shared(suite: Suite, key: string, title: string, routed: Array<'all' | 'web'>, workers: number, o: { cluster?: boolean } = {}): Promise<Result> {
  const s = await Scenario.open(key, title, suite, o);
  try {
    const bridges = await Promise.all(routed.map((role, i) => s.spawn(`${role}${i}`, s.env({ ROLE: role }))));
    await Promise.all(Array.from({ length: workers }, (_, i) => s.spawn(`w${i}`, s.env({ ROLE: 'worker' }))));
    const users = Array.from({ length: 500 }, (_, i) => `wm${key}${String(i).padStart(4, '0')}`);
    let rr = 0;
    const pick = () => bridges[rr++ % bridges.length]!.url;
    await pool(users, 16, async (user, i) => {
      const m = s.add(user, `${key}${i}`);
      await s.deliver(s.callback(), pick, m);
    });
    await s.settle(60_000);
    const pulls = s.fake.calls.filter((c) => c.api === 'sync_msg').length;
    s.notes.push(`${pulls} sync_msg calls, ${s.fake.gettokenCount()} gettoken for ${routed.length + workers} processes`);
    if (o.cluster) {
      // Spread, not one hot slot: the keys (queue shards, customer tickets, dedup marks) are on every master.
      const sizes = await Promise.all(suite.cluster!.client.nodes('master').map((n) => n.dbsize()));
      s.notes.push(`keys per master: ${sizes.join(' / ')}`);
      if (sizes.some((n) => n === 0)) s.failures.push('a master holds no key: the load did not spread over the cluster');
    }
    return s.result();
  } finally {
    await s.close();
  }
}

/** (b) 2× ROLE=all + 1× ROLE=worker (the setup). */
export const instances = (suite: Suite): Promise<Result> => shared(suite, 'b', '(b) 2× all + 1× worker, one Redis', ['all', 'all'], 1);

/** (g) a split deployment: 1× ROLE=web takes every callback, 2× ROLE=worker do the work. */
export const split = (suite: Suite): Promise<Result> => shared(suite, 'g', '(g) 1× web + 2× worker, one Redis', ['web'], 2);

/**
 * (h) (b) on a 3-master Redis Cluster: the answers spread over 6 hash-tagged queue shards, the store's keys over the
 * masters, and the same promises (each message answered once, nothing lost) across three processes.
 */
export const clusterInstances = (suite: Suite): Promise<Result> =>
  shared(suite, 'h', '(h) 2× all + 1× worker, Redis Cluster (3 masters)', ['all', 'all'], 1, { cluster: true });
