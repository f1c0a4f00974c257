/**
 * Real processes of the fault suite: one redis-server (AOF, appendfsync always, so it survives kill -9 and restarts
 * on the same data) and bridge servers (`node dist/main.js`). Every child is tracked and killed when the suite
 * exits, also on failure or a signal: no stray processes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../setup/services.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'main.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const live = new Set<ChildProcess>();

function track(child: ChildProcess): Promise<void> {
  live.add(child);
  return new Promise((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
}

/** SIGKILLs every child still running (synchronous: safe in an `exit` handler). */
export function killAllChildren(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Whether `redis-server` is on PATH (the same check as test/setup/services.ts). */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/** One PING over a raw socket: true only on `+PONG` (not while the AOF is still loading). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => s.write('*1\r\n$4\r\nPING\r\n'));
    s.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('+PONG')));
    s.once('error', () => done(false));
  });
}

/** A redis-server this suite owns: `kill9()` and `start()` again reuse the same port and data dir. */
export class RedisServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async create(dir: string): Promise<RedisServer> {
    mkdirSync(dir, { recursive: true });
    const r = new RedisServer(await freePort(), dir);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--dir', this.dir, '--logfile', join(this.dir, 'redis.log')];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    this.exited = track(child);
    const deadline = Date.now() + 10_000;
    while (!(await ping(this.port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}); see ${this.dir}/redis.log`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on ${this.port}`);
      await sleep(25);
    }
  }

  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** Started and not killed (it may still be loading its AOF). */
  get running(): boolean {
    return this.child !== null;
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
    this.child = null;
  }
}

/**
 * One bridge server process (`node dist/main.js`), env = PATH/HOME + `env` (never the suite's own environment),
 * cwd = the run dir (so a developer's `.env` is not read). stdout/stderr go to `<logDir>/<name>.log`. `kill9()` and
 * `start()` again restart it on the same port with the same env.
 */
export class Bridge {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log: WriteStream | null = null;
  private killing = false;
  /** exits we did not cause (a crash of the bridge itself) */
  readonly crashes: string[] = [];
  starts = 0;

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly runDir: string,
  ) {}

  static async start(name: string, env: Record<string, string>, runDir: string): Promise<Bridge> {
    const b = new Bridge(name, await freePort(), env, runDir);
    await b.start();
    return b;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get logPath(): string {
    return join(this.runDir, `${this.name}.log`);
  }

  /** Set when its scenario is over: a restart still pending in that scenario's background work does nothing. */
  retired = false;

  async start(): Promise<void> {
    if (this.retired) throw new Error(`${this.name} belongs to a finished scenario`);
    this.starts += 1;
    this.log ??= createWriteStream(this.logPath, { flags: 'a' });
    this.log.write(`--- start #${this.starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, [MAIN, '--no-env-file'], {
      cwd: this.runDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.killing = false;
    const log = this.log;
    child.stdout?.on('data', (c: Buffer) => log.write(c));
    child.stderr?.on('data', (c: Buffer) => log.write(c));
    child.once('exit', (code, signal) => {
      log.write(`--- exit code=${code} signal=${signal}\n`);
      if (!this.killing) this.crashes.push(`${this.name} exited by itself (code ${code}, signal ${signal})`);
    });
    this.exited = track(child);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${this.name} exited during start-up; see ${this.logPath}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill9();
        throw new Error(`${this.name} not healthy within 15 s; see ${this.logPath}`);
      }
      await sleep(30);
    }
  }

  async kill9(): Promise<void> {
    this.killing = true;
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** SIGTERM (graceful), SIGKILL after 3 s; closes the log. */
  async stop(): Promise<void> {
    if (this.child && this.alive) {
      this.killing = true;
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child?.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(t);
    }
    this.child = null;
    const log = this.log;
    this.log = null;
    if (log) await new Promise<void>((r) => log.end(() => r()));
  }

  /** The value of a gauge/counter line on /metrics, e.g. `bridge_llm_breaker_open{agent="default"}`; null if absent. */
  async metric(series: string): Promise<number | null> {
    try {
      const text = await (await fetch(`${this.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? null : Number(line.slice(series.length + 1));
    } catch {
      return null;
    }
  }
}
