/**
 * Hostile-input figures for `npm run bench` (docs/configuration.md "Cost of hostile input": no refused request costs more
 * than 5 ms of CPU at MAX_BODY_BYTES). The built server (dist/main.js, kf and OA with an EncodingAESKey, memory
 * store) gets each body of test/fixtures/hostile-bodies.ts, unsigned, on the kf route and the OA route (plaintext
 * and `encrypt_type=aes` queries), REQUESTS times in a row over one keep-alive connection. The server's CPU is
 * read from /proc/<pid>/stat before and after (clock ticks, so per-request figures are averages), and a probe
 * times /healthz every 20 ms meanwhile: its worst answer shows what the flood did to everyone else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { hostileBodies } from '../../test/fixtures/hostile-bodies.js';
import { freePort } from '../../test/setup/services.js';
import { BENCH_CREDS } from './creds.js';

const REQUESTS = Number(process.env.BENCH_HOSTILE_REQUESTS ?? 300);
const MAX_BODY_BYTES = 65_536;
const CLK_TCK = 100;
const SIG = '0'.repeat(40);
const ROUTES = [
  { name: 'kf', path: `/wecom/kf/callback?msg_signature=${SIG}&timestamp=1700000000&nonce=1` },
  { name: 'mp plain', path: `/wechat/mp/callback?signature=${SIG}&timestamp=1700000000&nonce=1&openid=o` },
  { name: 'mp aes', path: `/wechat/mp/callback?signature=${SIG}&timestamp=1700000000&nonce=1&openid=o&encrypt_type=aes&msg_signature=${SIG}` },
];

/** One hostile body's cost on each route: ms of server CPU per request. */
export interface HostileRow {
  name: string;
  bytes: number;
  cpuMsPerRequest: Record<string, number>;
  statuses: string;
}

/** The hostile figures plus the worst /healthz answer seen while they ran (ms). */
export interface HostileFigures {
  rows: HostileRow[];
  baselineMs: number;
  healthzWorstMs: number;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the whole line)
}

function post(agent: http.Agent, port: number, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'text/xml', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startServer(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/main.js', '--no-env-file'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      WECOM_CORP_ID: BENCH_CREDS.corpId,
      WECOM_KF_SECRET: BENCH_CREDS.kfSecret,
      WECOM_TOKEN: BENCH_CREDS.token,
      WECOM_ENCODING_AES_KEY: BENCH_CREDS.encodingAesKey,
      WECOM_API_BASE_URL: 'http://127.0.0.1:9',
      WECHAT_MP_APP_ID: 'wxBENCH000000000',
      WECHAT_MP_APP_SECRET: 'bench-mp-secret',
      WECHAT_MP_TOKEN: BENCH_CREDS.token,
      WECHAT_MP_ENCODING_AES_KEY: BENCH_CREDS.encodingAesKey,
      WECHAT_MP_API_BASE_URL: 'http://127.0.0.1:9',
    },
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return { child, port };
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('hostile-input server did not start');
}

/** Runs the corpus against a fresh server. Linux only (/proc). */
export async function measureHostile(): Promise<HostileFigures> {
  const { child, port } = await startServer();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let healthzWorstMs = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.arrayBuffer());
      healthzWorstMs = Math.max(healthzWorstMs, performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const costOf = async (path: string, body: Buffer) => {
    const statuses = new Set<number>();
    for (let i = 0; i < 5; i++) statuses.add(await post(agent, port, path, body)); // warm-up
    const before = cpuTicks(child.pid ?? 0);
    for (let i = 0; i < REQUESTS; i++) await post(agent, port, path, body);
    return { ms: ((cpuTicks(child.pid ?? 0) - before) * (1000 / CLK_TCK)) / REQUESTS, statuses: [...statuses].join('/') };
  };
  try {
    const small = Buffer.from(`<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt><![CDATA[${'A'.repeat(400)}]]></Encrypt></xml>`);
    const baselineMs = (await costOf(ROUTES[0]!.path, small)).ms;
    const rows: HostileRow[] = [];
    for (const hostile of hostileBodies(MAX_BODY_BYTES)) {
      const cpuMsPerRequest: Record<string, number> = {};
      const statuses: string[] = [];
      for (const route of ROUTES) {
        const r = await costOf(route.path, hostile.body);
        cpuMsPerRequest[route.name] = r.ms;
        statuses.push(r.statuses);
      }
      rows.push({ name: hostile.name, bytes: hostile.body.length, cpuMsPerRequest, statuses: statuses.join(' ') });
    }
    return { rows, baselineMs, healthzWorstMs };
  } finally {
    probing = false;
    await probe.catch(() => undefined);
    agent.destroy();
    child.kill('SIGTERM');
  }
}

/** Prints the table and the verdict against the 5 ms target. */
export function reportHostile(f: HostileFigures): void {
  console.log(`\nhostile callback bodies (${MAX_BODY_BYTES} B, unsigned; server CPU per request, mean of ${REQUESTS}):`);
  console.log(`${'body'.padEnd(28)} | ${ROUTES.map((r) => r.name.padStart(8)).join(' | ')} | statuses`);
  for (const row of f.rows) {
    const cells = ROUTES.map((r) => `${(row.cpuMsPerRequest[r.name] ?? NaN).toFixed(2).padStart(5)} ms`);
    console.log(`${row.name.padEnd(28)} | ${cells.join(' | ')} | ${row.statuses}`);
  }
  const worst = Math.max(...f.rows.flatMap((r) => Object.values(r.cpuMsPerRequest)));
  console.log(`a small refused callback: ${f.baselineMs.toFixed(2)} ms; worst hostile body: ${worst.toFixed(2)} ms per request (target < 5 ms: ${worst < 5 ? 'met' : 'NOT met'}); /healthz worst while flooded: ${f.healthzWorstMs.toFixed(1)} ms`);
}
