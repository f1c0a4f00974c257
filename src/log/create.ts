/**
 * Picks and wires the data layer: the message log, the failures list and customer identities, all on one backing
 * store — MySQL when MYSQL_URL is set, else Redis when the app has a client (REDIS_URL), else this process's memory
 * (docs/configuration.md, "Message log" and the MYSQL_URL row).
 */
import type { RedisClient } from '../store/redis-client.js';
import type { Logger } from 'pino';
import type { DataConfig } from '../config.js';
import { withResolveCache, type IdentityCacheOptions } from '../identity/cached.js';
import { createMemoryIdentities } from '../identity/memory-identities.js';
import { createMysqlIdentities } from '../identity/mysql-identities.js';
import { createRedisIdentities } from '../identity/redis-identities.js';
import type { IdentityStore } from '../identity/types.js';
import type { Metrics } from '../metrics.js';
import { createMemoryFailures } from './memory-failures.js';
import { createMemoryLog } from './memory-log.js';
import { defaultMigrationsDir } from './migrate.js';
import { createMysqlDb } from './mysql-db.js';
import { createMysqlFailures } from './mysql-failures.js';
import { createMysqlLog } from './mysql-log.js';
import { createRedisFailures } from './redis-failures.js';
import { createRedisLog } from './redis-log.js';
import type { FailureStore, MessageLog } from './types.js';
import type { WriterOptions } from './writer.js';

/** The data layer the app uses. */
export interface DataLayer {
  log: MessageLog;
  failures: FailureStore;
  identities: IdentityStore;
  /** Flushes the log (MySQL/Redis: up to 5 s while the store is away), then closes what the layer owns (not `redis`). */
  close(): Promise<void>;
}

/** Knobs for tests and the bench; production uses the defaults. */
export interface DataTuning {
  /** the batched writer (buffer size, batch size, backoff) */
  writer?: Partial<WriterOptions>;
  /** MySQL: ms between reconnect probes; default 5,000 */
  probeEveryMs?: number;
  /** MySQL: the migrations folder; default `migrations/` of this package */
  migrationsDir?: string;
  /** ms `close` keeps writing buffered rows; default 5,000 */
  closeGraceMs?: number;
  identityCache?: IdentityCacheOptions;
}

/** What the factory needs from the app. */
export interface DataLayerDeps {
  /** the app's client when REDIS_URL is set (not owned: the app quits it), else null */
  redis: RedisClient | null;
  /** Redis key prefix, e.g. `bridge:` */
  redisPrefix: string;
  log: Logger;
  metrics: Metrics;
  tuning?: DataTuning;
}

/**
 * Creates the data layer. With MYSQL_URL it connects and applies pending migrations before returning; an
 * unreachable server does NOT fail the start: one line names MYSQL_URL (credentials masked), the address and the
 * reason, rows are buffered, and the connection and migrations happen when the server answers.
 * @throws TypeError only for a MYSQL_URL that is not a URL (the config check rejects those first)
 */
export async function createDataLayer(config: DataConfig, deps: DataLayerDeps): Promise<DataLayer> {
  const t = deps.tuning ?? {};
  const common = { logContent: config.logContent, retentionDays: config.retentionDays, log: deps.log, metrics: deps.metrics, writer: t.writer };

  if (config.mysqlUrl !== null) {
    const db = createMysqlDb(config.mysqlUrl, {
      log: deps.log,
      metrics: deps.metrics,
      migrationsDir: t.migrationsDir ?? defaultMigrationsDir(),
      probeEveryMs: t.probeEveryMs,
    });
    await db.ready().catch(() => undefined);
    const log = createMysqlLog(db, { ...common, closeGraceMs: t.closeGraceMs });
    const identities = withResolveCache(createMysqlIdentities(db), t.identityCache);
    return {
      log,
      failures: createMysqlFailures(db),
      identities,
      async close() {
        await log.close();
        await identities.close();
        await db.close();
      },
    };
  }

  if (deps.redis !== null) {
    const log = createRedisLog(deps.redis, deps.redisPrefix, { ...common, limit: config.memoryLimit, closeGraceMs: t.closeGraceMs });
    const identities = withResolveCache(createRedisIdentities(deps.redis, deps.redisPrefix), t.identityCache);
    return {
      log,
      failures: createRedisFailures(deps.redis, deps.redisPrefix, config.memoryLimit),
      identities,
      async close() {
        await log.close();
        await identities.close();
      },
    };
  }

  const log = createMemoryLog({ limit: config.memoryLimit, logContent: config.logContent, retentionDays: config.retentionDays });
  const identities = createMemoryIdentities();
  return {
    log,
    failures: createMemoryFailures({ limit: config.memoryLimit }),
    identities,
    async close() {
      await log.close();
      await identities.close();
    },
  };
}
