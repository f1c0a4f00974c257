/**
 * The demo's server processes: starts the real build (`dist/main.js`) as a child process on a free 127.0.0.1
 * port, waits until `/healthz` answers, and keeps its stdout + stderr for the failure report. By default the child
 * gets exactly the demo's variables (PATH and HOME besides) and `--no-env-file`: a developer's `.env` or shell
 * cannot change what the demo proves. With `npm run demo -- --env` it inherits the shell's variables and reads
 * `.env` like `npm start` (to try a real LLM). Either way REDIS_URL is forced empty and ROLE to `all`: the demo
 * never touches a real deployment's Redis. Also holds the limits every part of the demo shares.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/setup/services.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Acks slower than this are pointed out (not failed: a busy machine is not a broken product). */
export const ACK_NOTE_MS = 50;
/** `npm run demo -- --env`: use the shell's variables and `.env` (a real LLM); otherwise echo, offline. */
export const USE_ENV = process.argv.includes('--env');
/** How long a reply may take (a real LLM may be slow). */
export const REPLY_TIMEOUT_MS = Number(process.env.DEMO_REPLY_TIMEOUT_MS ?? 90_000);
/** After a reply, how long the demo keeps watching for a duplicate. */
export const DUPLICATE_WINDOW_MS = 300;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Children still running: killed when the demo exits however it exits (a closed pipe, Ctrl-C, an exception). */
const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((c) => c.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));

export interface DemoServer {
  url: string;
  pid: number | undefined;
  /** The last part of the child's stdout + stderr, for a failure report. */
  outputTail(): string;
  /** SIGTERM, then waits (at most 3 s, then SIGKILL) for the child to exit. */
  stop(): Promise<void>;
}

/**
 * Spawns `dist/main.js` with `env` (+ PORT, HOST, LOG_LEVEL, REDIS_URL='', ROLE=all; see the file comment for
 * what else it inherits) and resolves once `/healthz` answers 200. Rejects, with the child's output and after
 * killing it, when the child exits first or is not healthy within 15 s.
 */
export async function startServer(env: Record<string, string>): Promise<DemoServer> {
  const port = await freePort();
  const inherited = USE_ENV ? process.env : { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const child = spawn(process.execPath, USE_ENV ? ['dist/main.js'] : ['dist/main.js', '--no-env-file'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...inherited,
      LOG_LEVEL: process.env.DEMO_LOG_LEVEL ?? 'warn',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      // The demo keeps to memory even when .env names a Redis: it must never touch a real deployment's data.
      REDIS_URL: '',
      ROLE: 'all',
    },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const output: string[] = [];
  child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: DemoServer = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    outputTail: () => output.join('').slice(-4000),
    stop: () => stop(child, exited),
  };
  try {
    await waitHealthy(server.url, child);
  } catch (e) {
    await server.stop();
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${why}\n--- server output ---\n${server.outputTail()}`, { cause: e });
  }
  return server;
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited during start-up (code ${child.exitCode})`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('server did not become healthy within 15 s');
    await sleep(50);
  }
}
