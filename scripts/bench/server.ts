/**
 * Starts the built server (dist/main.js) as a child process for the OA figures, the way bench.ts starts its own:
 * exactly the environment given (plus PATH, HOST=127.0.0.1 and a free PORT), `--no-env-file`. Its output is kept
 * (the last lines) so that a server that refuses to start can be reported by the line that says why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/setup/services.js';
import { BENCH_MP, BENCH_MP_SECRET } from './creds.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEPT_LINES = 40;

/** A running server process. */
export interface BenchServer {
  child: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
  stop(): Promise<void>;
}

/**
 * The OA channel's variables for the bench account, answering through `apiUrl` (the fake OA API).
 * @param mode WECHAT_MP_REPLY_MODE: `active` (custom/send later) or `passive` (the answer in the HTTP response)
 */
export function mpServerEnv(apiUrl: string, mode: 'active' | 'passive'): Record<string, string> {
  return {
    WECHAT_MP_APP_ID: BENCH_MP.appId,
    WECHAT_MP_APP_SECRET: BENCH_MP_SECRET,
    WECHAT_MP_TOKEN: BENCH_MP.token,
    WECHAT_MP_ENCODING_AES_KEY: BENCH_MP.encodingAesKey,
    WECHAT_MP_API_BASE_URL: apiUrl,
    WECHAT_MP_REPLY_MODE: mode,
  };
}

/**
 * Spawns the server and waits until `/healthz` answers 200 (every role listens, `worker` for health and metrics).
 * @param env the server's variables besides PATH, HOST and PORT; LOG_LEVEL defaults to `warn`
 * @param label names the process in the error
 * @throws Error `<label> did not start: <the last error-looking output line>` when it exits or is not healthy in 20 s
 */
export async function startBenchServer(env: Record<string, string>, label = 'server'): Promise<BenchServer> {
  const port = await freePort();
  // BENCH_NODE_ARGS: node flags for the server, e.g. `--heapsnapshot-signal=SIGUSR2` (profiling).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'dist/main.js', '--no-env-file'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
  };
  child.stdout?.on('data', keep);
  // Start-up and crash messages go to stderr: shown as they come, like the other figures' servers.
  child.stderr?.on('data', (chunk: Buffer) => {
    keep(chunk);
    process.stderr.write(chunk);
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return { child, pid: child.pid ?? 0, url, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`${label} did not start: ${failureLine(lines)}`);
}

/** The line that explains a failed start: a config problem or a fatal log entry, else the last line. */
function failureLine(lines: string[]): string {
  const reason = (l: string) => {
    try {
      const j = JSON.parse(l) as { level?: number; msg?: string; err?: { message?: string } };
      return (j.level ?? 0) >= 50 ? `${j.msg ?? ''}${j.err?.message ? `: ${j.err.message}` : ''}` : null;
    } catch {
      return l; // plain text: console.error from main.ts (configuration problems, start-up failures)
    }
  };
  const found = lines.map((l) => reason(l)?.trim()).filter((l): l is string => !!l);
  return found.join(' ').slice(0, 600) || '(no output)';
}
