/**
 * Scale-out figure for `npm run bench` (key `scale`; with BENCH_CLUSTER=1 or key `scale-cluster` also on a Redis
 * Cluster): answered messages/s with one ROLE=web process and 1, 2, 4 (BENCH_SCALE_WORKERS) ROLE=worker processes
 * of the built server on one Redis, the `echo` agent (answers at once) and the fake OA API accepting every send.
 * OA active-mode callbacks, not kf: each OA callback becomes a job directly, while kf messages are pulled by one
 * puller per kf account, which would cap the figure at one account's pull rate whatever the number of workers.
 * Each run: 200 warm-up messages, then BENCH_SCALE_MESSAGES (3,000) distinct customers' callbacks posted as fast as
 * the web process acks them (BENCH_SCALE_CONNECTIONS, 50), answers counted at the fake's custom/send;
 * msgs/s = messages / (last answer − first callback). CPU over the same window: the servers' (web + workers,
 * /proc utime+stime), Redis's (INFO used_cpu_*) and the whole machine's (/proc/stat), to say what it is bound by.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { postBurst } from './burst.js';
import { startMpSide, type MpSide } from './mp-side.js';
import { busyFraction, cpuSeconds, machineCpu } from './proc.js';
import type { ScaleBackend } from './scale-redis.js';
import { mpServerEnv, startBenchServer, type BenchServer } from './server.js';

const WORKERS = (process.env.BENCH_SCALE_WORKERS ?? '1,2,4').split(',').map(Number).filter((n) => n > 0);
const MESSAGES = Number(process.env.BENCH_SCALE_MESSAGES ?? 3000);
const CONNECTIONS = Number(process.env.BENCH_SCALE_CONNECTIONS ?? 50);
const WARMUP = 200;

/** One run: `workers` worker processes on one backend. CPU figures are cores busy on average (s of CPU / s). */
export interface ScaleRun {
  backend: ScaleBackend['name'];
  workers: number;
  messages: number;
  answered: number;
  /** answered / (last answer − first callback), messages/s */
  msgsPerS: number;
  /** callbacks the web process acked per second while they were posted */
  acksPerS: number;
  refused: number;
  /** web + workers, cores */
  serverCores: number;
  /** web + workers CPU per answered message, ms */
  serverCpuMsPerMsg: number;
  redisCores: number;
  /** whole machine, 0..1 */
  machineBusy: number;
  failed?: string;
}

/** Runs every BENCH_SCALE_WORKERS count on `backend`; a run whose servers do not start reports why and ends the series. */
export async function measureScale(backend: ScaleBackend): Promise<ScaleRun[]> {
  const side = await startMpSide();
  const runs: ScaleRun[] = [];
  try {
    for (const [i, workers] of WORKERS.entries()) {
      const run = await measureRun(side, backend, i, workers);
      runs.push(run);
      process.stderr.write(`  [scale ${backend.name}] ${workers} worker(s): ${run.failed ?? `${run.msgsPerS.toFixed(0)} msgs/s, server ${run.serverCores.toFixed(2)} cores, machine ${(run.machineBusy * 100).toFixed(0)} % busy`}\n`);
      if (run.failed) break;
    }
    return runs;
  } finally {
    side.close();
  }
}

async function measureRun(side: MpSide, backend: ScaleBackend, index: number, workers: number): Promise<ScaleRun> {
  const run: ScaleRun = {
    backend: backend.name, workers, messages: MESSAGES, answered: 0, msgsPerS: NaN, acksPerS: NaN, refused: 0,
    serverCores: NaN, serverCpuMsPerMsg: NaN, redisCores: NaN, machineBusy: NaN,
  };
  const env = { ...mpServerEnv(side.apiUrl, 'active'), LLM_PROVIDER: 'echo', ...(await backend.env(index)) };
  const servers: BenchServer[] = [];
  try {
    servers.push(await startBenchServer({ ...env, ROLE: 'web' }, `web (${backend.name})`));
    for (let w = 0; w < workers; w++) servers.push(await startBenchServer({ ...env, ROLE: 'worker' }, `worker ${w + 1} (${backend.name})`));
    const web = servers[0] as BenchServer;
    const tag = `scale${backend.name === 'cluster' ? 'c' : 'r'}${workers}${Date.now().toString(36)}`;
    await postBurst(web.url, await side.callbacks(`${tag}w`, WARMUP), CONNECTIONS);
    await waitAnswered(side, `${tag}w`, WARMUP, 30_000);
    const requests = await side.callbacks(tag, MESSAGES);
    const before = { server: serverCpu(servers), redis: await backend.cpuSeconds(), machine: machineCpu() };
    const burst = await postBurst(web.url, requests, CONNECTIONS);
    const sent = await waitAnswered(side, tag, MESSAGES, Math.max(60_000, MESSAGES * 20));
    const after = { server: serverCpu(servers), redis: await backend.cpuSeconds(), machine: machineCpu() };
    const seconds = (sent.lastAt - burst.startedAt) / 1000;
    // The CPU window runs until the answers were seen (up to one poll late), a little longer than `seconds`.
    const windowS = (Date.now() - burst.startedAt) / 1000;
    return {
      ...run,
      answered: sent.customers,
      msgsPerS: sent.customers / seconds,
      acksPerS: requests.length / ((burst.endedAt - burst.startedAt) / 1000),
      refused: burst.refused,
      serverCores: (after.server - before.server) / windowS,
      serverCpuMsPerMsg: ((after.server - before.server) * 1000) / Math.max(1, sent.customers),
      redisCores: (after.redis - before.redis) / windowS,
      machineBusy: busyFraction(before.machine, after.machine),
    };
  } catch (e) {
    return { ...run, failed: (e as Error).message };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const serverCpu = (servers: BenchServer[]) => servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);

async function waitAnswered(side: MpSide, tag: string, total: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await side.sent(tag, 'bench ');
    if (s.customers >= total || Date.now() > deadline) return s;
    await sleep(100);
  }
}

/**
 * Prints workers | msgs/s per backend | the CPU figures of the one-Redis runs (cluster ones in brackets), and a
 * one-line reading of where throughput stops growing and what bound it.
 */
export function reportScale(single: ScaleRun[], cluster: ScaleRun[] | null, clusterFailure: string | null): void {
  const f = (n: number | undefined, d = 0) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const cores = availableParallelism();
  console.log(`\nscale-out: 1 web + N workers, echo agent, ${MESSAGES} OA customers' messages posted over ${CONNECTIONS} connections (${cores} vCPU; CPU in cores busy on average)`);
  console.log('workers | msgs/s (one Redis) | msgs/s (cluster) | web acks/s | server CPU    | CPU ms/msg | Redis CPU | machine busy');
  for (const r of single) {
    const c = cluster?.find((x) => x.workers === r.workers);
    const clusterCell = !cluster ? '—' : !c ? 'not run' : c.failed ? 'failed' : f(c.msgsPerS);
    const both = (a: number, b: number | undefined, d: number) => `${f(a, d)}${c && !c.failed ? ` (${f(b, d)})` : ''}`;
    if (r.failed) {
      console.log(`${String(r.workers).padStart(7)} | failed: ${r.failed}`);
      continue;
    }
    console.log(
      `${String(r.workers).padStart(7)} | ${f(r.msgsPerS).padStart(18)} | ${clusterCell.padStart(16)} | ${f(r.acksPerS).padStart(10)} | ` +
        `${both(r.serverCores, c?.serverCores, 2).padStart(13)} | ${both(r.serverCpuMsPerMsg, c?.serverCpuMsPerMsg, 2).padStart(10)} | ` +
        `${both(r.redisCores, c?.redisCores, 2).padStart(9)} | ${both(r.machineBusy * 100, c ? c.machineBusy * 100 : undefined, 0)} %`,
    );
  }
  const incomplete = [...single, ...(cluster ?? [])].filter((r) => !r.failed && r.answered < r.messages);
  for (const r of incomplete) console.log(`${r.backend}, ${r.workers} worker(s): only ${r.answered}/${r.messages} answered before the timeout`);
  if (clusterFailure) console.log(`cluster: ${clusterFailure}`);
  const cf = cluster?.find((r) => r.failed);
  if (cf) console.log(`cluster, ${cf.workers} worker(s): ${cf.failed}`);
  console.log(scaleReading(single.filter((r) => !r.failed), cores));
}

/** Where msgs/s stops growing (< 10 % more than with fewer workers) and whether the machine's CPU was the limit. */
export function scaleReading(runs: ScaleRun[], cores: number): string {
  if (runs.length < 2) return 'reading: fewer than two worker counts measured';
  const stop = runs.findIndex((r, i) => i > 0 && r.msgsPerS < (runs[i - 1] as ScaleRun).msgsPerS * 1.1);
  const at = runs[stop] ?? (runs.at(-1) as ScaleRun);
  const busy = `machine ${(at.machineBusy * 100).toFixed(0)} % busy on ${cores} vCPU (servers ${at.serverCores.toFixed(2)} cores, Redis ${at.redisCores.toFixed(2)})`;
  if (stop < 0) return `reading: still growing at ${at.workers} workers (${at.msgsPerS.toFixed(0)} msgs/s); ${busy}`;
  const prev = runs[stop - 1] as ScaleRun;
  const bound =
    at.machineBusy >= 0.85
      ? `CPU-bound: no core left for more workers, and each message costs more CPU as processes share the cores (${prev.serverCpuMsPerMsg.toFixed(1)} → ${at.serverCpuMsPerMsg.toFixed(1)} ms)`
      : at.redisCores >= 0.85
        ? 'Redis-bound: one Redis core is saturated'
        : "not CPU-bound: look at the web process's ack rate and the queue";
  return `reading: no gain past ${prev.workers} worker(s) (${prev.workers} → ${at.workers}: ${prev.msgsPerS.toFixed(0)} → ${at.msgsPerS.toFixed(0)} msgs/s); ${busy}: ${bound}`;
}
