/**
 * What the data-layer tests share: a logger whose lines can be read back, metrics, the three backends as
 * `createDataLayer` builds them (memory, redis on the run's Redis with a unique prefix, mysql on a database of the
 * test file's own), and small row builders.
 */
import { Writable } from 'node:stream';
import type { RedisClient } from '../../src/store/redis-client.js';
import type { Logger } from 'pino';
import type { DataConfig } from '../../src/config.js';
import { createDataLayer, type DataLayer, type DataTuning } from '../../src/log/create.js';
import type { MysqlMessageLog } from '../../src/log/mysql-log.js';
import type { NewLogRow } from '../../src/log/types.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { connectCluster, connectRedis, redisClusterNodes, redisUrl, uniquePrefix } from '../helpers/redis.js';
import { mysqlUrl, type TestDatabase } from '../helpers/mysql.js';

/** A logger and the JSON lines it wrote. */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[]; messages: () => string[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', sink), lines, messages: () => lines.map((l) => String(l.msg)) };
}

/** The value of bridge_log_writes_total{outcome}. */
export async function logWrites(metrics: Metrics, outcome: 'ok' | 'retried' | 'dropped'): Promise<number> {
  return (await metrics.logWrites.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/** Writer and probe timings short enough for tests. */
export const FAST: DataTuning = {
  writer: { delayMs: 10, minBackoffMs: 50, maxBackoffMs: 300 },
  probeEveryMs: 200,
  closeGraceMs: 2000,
};

/** The stores every contract suite runs against (a Redis Cluster is the Redis kind, with its keys' hash tag). */
export type Backend = 'memory' | 'redis' | 'redis cluster' | 'mysql';

/** A data layer under test, with the means to open a second one on the same backend. */
export interface Harness {
  layer: DataLayer;
  metrics: Metrics;
  logs: ReturnType<typeof captureLog>;
  /** another data layer on the same Redis prefix / database (a second process); closed by `close` */
  another(): Promise<DataLayer>;
  /** MySQL: runs the retention deletion now; memory/redis: nothing (they drop expired rows on read) */
  purge(): Promise<void>;
  close(): Promise<void>;
}

/** Which backends this run can test. */
export const BACKENDS: { name: Backend; kind: 'memory' | 'redis' | 'mysql'; enabled: boolean }[] = [
  { name: 'memory', kind: 'memory', enabled: true },
  { name: 'redis', kind: 'redis', enabled: redisUrl !== '' },
  { name: 'redis cluster', kind: 'redis', enabled: redisClusterNodes !== '' },
  { name: 'mysql', kind: 'mysql', enabled: mysqlUrl !== '' },
];

/**
 * Builds a data layer on a backend. MySQL: on `db`, emptied first (the file's tests share the database).
 * @param data DataConfig fields to override (limit 10,000, content kept, 180 days by default)
 */
export async function openHarness(backend: Backend, db: TestDatabase | null, data: Partial<DataConfig> = {}, tuning: DataTuning = FAST): Promise<Harness> {
  const config: DataConfig = { mysqlUrl: null, memoryLimit: 10_000, logContent: true, retentionDays: 180, ...data };
  const clients: RedisClient[] = [];
  const layers: DataLayer[] = [];
  // On a cluster the layer's keys share one hash tag, as deps.ts lays them out there.
  const prefix = backend === 'redis cluster' ? `${uniquePrefix('data')}{data}:` : uniquePrefix('data');
  const metrics = createMetrics({ defaultMetrics: false, mysql: backend === 'mysql' });
  const logs = captureLog();
  const open = async (m: Metrics, log: Logger) => {
    let redis: RedisClient | null = null;
    if (backend === 'redis' || backend === 'redis cluster') {
      redis = backend === 'redis' ? await connectRedis() : await connectCluster();
      clients.push(redis);
    }
    const layer = await createDataLayer(backend === 'mysql' ? { ...config, mysqlUrl: db!.url } : config, { redis, redisPrefix: prefix, log, metrics: m, tuning });
    layers.push(layer);
    return layer;
  };
  if (backend === 'mysql') {
    // Tables exist once a layer has migrated; empty them so each test starts clean.
    const first = await open(createMetrics({ defaultMetrics: false, mysql: true }), captureLog().log);
    for (const t of ['messages', 'settlements', 'failures', 'identities', 'customers']) await db!.query(`DELETE FROM ${t}`);
    await first.close();
    layers.pop();
  }
  const layer = await open(metrics, logs.log);
  return {
    layer,
    metrics,
    logs,
    another: () => open(createMetrics({ defaultMetrics: false, mysql: backend === 'mysql' }), captureLog().log),
    async purge() {
      if (layer.log.kind === 'mysql') await (layer.log as MysqlMessageLog).purgeExpired();
    },
    async close() {
      for (const l of layers) await l.close();
      for (const c of clients) c.disconnect();
    },
  };
}

let n = 0;
/** An inbound row with distinct msgid; override what the test looks at. */
export function inbound(over: Partial<NewLogRow> = {}): NewLogRow {
  n++;
  return {
    direction: 'in',
    channel: 'kf',
    account: 'wkAAA',
    customerId: 'cus_aaaaaaaaaaaaaaaaaaaa',
    externalId: 'wmEXT1',
    msgid: `in-${n}-${Math.random().toString(36).slice(2, 8)}`,
    type: 'text',
    content: `hello ${n}`,
    status: 'pending',
    ...over,
  };
}

/** An outbound row answering `replyTo`. */
export function outbound(over: Partial<NewLogRow> = {}): NewLogRow {
  n++;
  return {
    direction: 'out',
    channel: 'kf',
    account: 'wkAAA',
    customerId: 'cus_aaaaaaaaaaaaaaaaaaaa',
    externalId: 'wmEXT1',
    msgid: `out-${n}-${Math.random().toString(36).slice(2, 8)}`,
    type: 'answer',
    content: `answer ${n}`,
    status: 'sent',
    ...over,
  };
}
