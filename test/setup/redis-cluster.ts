import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './services.js';

/** A throw-away Redis Cluster on loopback, owned by whoever started it. */
export interface RedisClusterServers {
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: the value of REDIS_CLUSTER_NODES */
  nodes: string;
  ports: number[];
  /** Stops every node (SIGTERM, waits) and deletes the data dirs. */
  stop(): Promise<void>;
  /** kill -9 of one node (a master dying), by port. */
  kill(port: number): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a real Redis Cluster of `masters` masters, each with `replicas` replicas (default none), from Debian's
 * `redis-server` on free loopback ports, the way docs/development.md describes: `cluster-enabled yes`, then
 * `redis-cli --cluster create … --cluster-replicas n --cluster-yes`, then waits for `cluster_state:ok` on every node.
 * @param o.nodeTimeoutMs `cluster-node-timeout` (default 5,000): how long a master may be unreachable before its
 *   replica takes over
 * @param o.appendonly AOF on each node (the fault suite and the benchmark: as a deployment runs it); default off
 * @param o.appendfsync with AOF: `everysec` (default) or `always` (the benchmark, like its single Redis)
 * @throws when redis-server / redis-cli are missing, or the cluster is not ok within 20 s
 */
export async function startRedisCluster(
  o: { masters?: number; replicas?: number; nodeTimeoutMs?: number; appendonly?: boolean; appendfsync?: 'everysec' | 'always' } = {},
): Promise<RedisClusterServers> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'bridge-redis-cluster-'));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort();
      const d = join(dir, String(port));
      mkdirSync(d);
      // prettier-ignore
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
        '--cluster-config-file', join(d, 'nodes.conf'), '--dir', d, '--save', '', '--appendonly', o.appendonly ? 'yes' : 'no',
        '--appendfsync', o.appendfsync ?? 'everysec', '--logfile', join(d, 'log'), '--cluster-node-timeout', String(o.nodeTimeoutMs ?? 5000)];
      children.push(spawn('redis-server', args, { stdio: 'ignore' }));
      ports.push(port);
    }
    for (const port of ports) await waitFor(() => cli(port, ['ping']) === 'PONG', `redis-server on ${port} did not answer`);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    for (const port of ports) {
      await waitFor(() => /cluster_state:ok/.test(cli(port, ['cluster', 'info'])), `cluster not ok on ${port}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports, stop, kill: (port) => children[ports.indexOf(port)]?.kill('SIGKILL') };
}

/** Whether `redis-cli` is on PATH beside `redis-server` (Debian's redis-server package brings both). */
export function canStartRedisCluster(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
}

function cli(port: number, args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });
  return (r.stdout ?? '').trim();
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(what);
    await sleep(100);
  }
}
