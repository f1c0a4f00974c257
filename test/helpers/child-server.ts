import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../setup/services.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildServer {
  url: string;
  proc: ChildProcess;
  /** stdout + stderr lines so far */
  output: string[];
  /** Sends a signal and waits for the process to exit. @returns the exit code (null when killed by signal) */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Every server this test process started and has not seen exit: killed (whole group) when the process exits. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) killGroup(proc, 'SIGKILL');
});

/** Signals the child's whole process group: the server and anything it started. */
function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (proc.pid) process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

/** Stops every child server still running (each test file's afterEach calls it: a failed test leaves none behind). */
export async function stopAllChildServers(): Promise<void> {
  await Promise.all(
    [...running].map((proc) => {
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      killGroup(proc, 'SIGKILL');
      return gone;
    }),
  );
}

/**
 * Starts the real server entry (`src/main.ts` through tsx) as a child process — the same code path as
 * `npm start` — and waits until `/healthz` answers. The child gets exactly `env` plus PATH/HOME (never this
 * process's variables) and `--no-env-file` (never a developer's `.env`); it runs in its own process group, which
 * `stop`, `stopAllChildServers` and this process's exit kill.
 * @param env the whole server environment besides PATH/HOME (PORT and HOST are chosen here)
 */
export async function startChildServer(env: Record<string, string>, timeoutMs = 15_000): Promise<ChildServer> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--no-env-file'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const output: string[] = [];
  const collect = (chunk: Buffer) => output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited early (${proc.exitCode}):\n${output.join('\n')}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      killGroup(proc, 'SIGKILL');
      throw new Error(`server did not become healthy:\n${output.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    proc,
    output,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) killGroup(proc, signal);
      return exited;
    },
  };
}
