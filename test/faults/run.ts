/**
 * `npm run faults`: the fault suite. Real processes only: the built server (`node dist/main.js`), a redis-server
 * the suite spawns itself (AOF, appendfsync always, killable and restartable on the same data), and the fakes
 * on 127.0.0.1. Runs the scenarios in sequence, prints
 * `scenario | messages in | answered | duplicates | lost | seconds | result`, and exits non-zero when any
 * scenario lost or duplicated a message, failed one of its checks or could not run.
 *
 * FAULTS_ONLY=a,c runs only those scenarios; FAULTS_SEED=<n> replays the random choices (kill moments, victims) of
 * an earlier run. Server logs and Redis data stay in the run dir when something failed (or with FAULTS_KEEP=1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { hasRedisServer, killAllChildren, RedisServer } from './procs.js';
import { clusterInstances, instances, retries, split } from './scenarios-load.js';
import { Cluster } from 'ioredis';
import { canStartRedisCluster, startRedisCluster, type RedisClusterServers } from '../setup/redis-cluster.js';
import { appCrashes, redisCrash } from './scenarios-crash.js';
import { llmFaults, wecomFaults } from './scenarios-upstream.js';
import { seeded, type Result, type Suite } from './world.js';

const SCENARIOS: Array<{ key: string; label: string; limitMs: number; cluster?: boolean; run: (s: Suite) => Promise<Result> }> = [
  { key: 'a', label: '(a) WeChat retries', limitMs: 60_000, run: retries },
  { key: 'b', label: '(b) several instances', limitMs: 90_000, run: instances },
  { key: 'c', label: '(c) crashes', limitMs: 120_000, run: appCrashes },
  { key: 'd', label: '(d) Redis crash', limitMs: 90_000, run: redisCrash },
  { key: 'e', label: '(e) LLM faults', limitMs: 90_000, run: llmFaults },
  { key: 'f', label: '(f) WeCom faults', limitMs: 60_000, run: wecomFaults },
  { key: 'g', label: '(g) web + workers', limitMs: 90_000, run: split },
  { key: 'h', label: '(h) Redis Cluster', limitMs: 90_000, cluster: true, run: clusterInstances },
];

process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\nfault suite: ${sig}, stopping every child process`);
    killAllChildren();
    process.exit(130);
  });
}
process.on('uncaughtException', (e) => {
  console.error('fault suite: uncaught exception', e);
  killAllChildren();
  process.exit(1);
});

function failed(key: string, label: string, why: string, started: number): Result {
  return { key, label, messagesIn: 0, answered: 0, duplicates: 0, lost: 0, seconds: (Date.now() - started) / 1000, failures: [why], notes: [] };
}

function withLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(t));
}

function table(results: Result[]): string {
  const head = ['scenario', 'messages in', 'answered', 'duplicates', 'lost', 'seconds', 'result'];
  const rows = results.map((r) => [
    r.label,
    String(r.messagesIn),
    String(r.answered),
    String(r.duplicates),
    String(r.lost),
    r.seconds.toFixed(1),
    ok(r) ? 'ok' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

const ok = (r: Result) => r.lost === 0 && r.duplicates === 0 && r.failures.length === 0;

async function main(): Promise<number> {
  const started = Date.now();
  if (!hasRedisServer()) {
    console.error('fault suite: redis-server is not on PATH (CI installs it; locally: apt-get install redis-server)');
    return 1;
  }
  const only = (process.env.FAULTS_ONLY ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  const seed = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const runDir = mkdtempSync(join(tmpdir(), 'bridge-faults-'));
  console.log(`fault suite: seed ${seed} (FAULTS_SEED=${seed} replays it), run dir ${runDir}`);
  const redis = await RedisServer.create(join(runDir, 'redis'));
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => undefined); // unreachable while scenario (d) has it down; commands then reject
  await client.connect();
  const chosen = SCENARIOS.filter((x) => only.length === 0 || only.includes(x.key));
  // The cluster scenarios need redis-cli beside redis-server (Debian's redis-server package has both).
  let clusterServers: RedisClusterServers | null = null;
  let clusterClient: Cluster | null = null;
  if (chosen.some((x) => x.cluster)) {
    if (!canStartRedisCluster()) {
      console.error('fault suite: redis-cli is not on PATH, the Redis Cluster scenario cannot run');
      return 1;
    }
    clusterServers = await startRedisCluster({ appendonly: true });
    clusterClient = new Cluster(
      clusterServers.ports.map((port) => ({ host: '127.0.0.1', port })),
      { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } },
    );
    clusterClient.on('error', () => undefined);
    await clusterClient.connect();
  }
  const suite: Suite = {
    redis,
    client,
    runDir,
    rand: seeded(seed),
    open: new Set(),
    cluster: clusterServers && clusterClient ? { nodes: clusterServers.nodes, client: clusterClient } : null,
  };
  const results: Result[] = [];
  try {
    for (const sc of chosen) {
      const t0 = Date.now();
      // Each scenario draws from its own sequence, so FAULTS_SEED replays it also when run alone (FAULTS_ONLY).
      suite.rand = seeded(seed + sc.key.charCodeAt(0));
      console.log(`\n${sc.label}: running`);
      let r: Result;
      try {
        r = await withLimit(sc.run(suite), sc.limitMs, sc.label);
      } catch (e) {
        r = failed(sc.key, sc.label, `did not run to the end: ${e instanceof Error ? e.message : String(e)}`, t0);
      }
      // A scenario that ran out of time still holds its processes: stop them before the next one flushes Redis.
      for (const left of [...suite.open]) await left.close().catch(() => undefined);
      if (!redis.running) await redis.start();
      results.push(r);
      console.log(`${r.label}: ${ok(r) ? 'ok' : 'FAIL'} — ${r.answered}/${r.messagesIn} answered, ${r.duplicates} duplicates, ${r.lost} lost, ${r.seconds.toFixed(1)} s`);
      for (const f of r.failures) console.log(`  ✗ ${f}`);
      for (const n of r.notes) console.log(`  · ${n}`);
    }
  } finally {
    client.disconnect();
    clusterClient?.disconnect();
    await redis.stop();
    await clusterServers?.stop();
  }
  const allOk = results.length > 0 && results.every(ok);
  console.log(`\n${table(results)}\n`);
  console.log(`fault suite ${allOk ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${seed})`);
  if (allOk && !process.env.FAULTS_KEEP) rmSync(runDir, { recursive: true, force: true });
  else console.log(`server logs and Redis data kept in ${runDir}`);
  return allOk ? 0 : 1;
}

main().then(
  (code) => {
    killAllChildren();
    process.exit(code);
  },
  (e: unknown) => {
    console.error('fault suite failed to run:', e);
    killAllChildren();
    process.exit(1);
  },
);
