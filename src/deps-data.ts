import type { RedisClient } from './store/redis-client.js';
import type { Logger } from 'pino';
import type { AdminDeps } from './admin/deps.js';
import { createEventBus, publishingLog, type EventBus } from './admin/event-bus.js';
import { createCustomerOps } from './admin/wiring.js';
import { createOperatorActions } from './admin/operator-actions.js';
import { sessionKeys } from './admin/session.js';
import { runDoctor } from './doctor/index.js';
import type { Config } from './config.js';
import { createDataLayer, type DataLayer, type DataTuning } from './log/create.js';
import type { Metrics } from './metrics.js';
import type { OpenAiCompatDeps } from './openai-compat/plugin.js';
import type { AgentRouter } from './pipeline/agents.js';
import type { JobQueue } from './pipeline/job-queue.js';
import { createRecorder, type MessagePlace, type MessageRecorder } from './pipeline/recorder.js';
import type { Store } from './store/types.js';
import type { ApiClient } from './wechat-api/api-client.js';

/** How long the reply path waits for a customer id before going on without it (ms). */
const IDENTIFY_TIMEOUT_MS = 500;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

/** The data layer with what the pipeline takes from it. */
export interface DataWiring {
  data: DataLayer;
  /** the operator's customer id of a place (kf identities are per corp) */
  identify: (place: MessagePlace) => Promise<string>;
  recorder: MessageRecorder;
  /** new log rows and state changes, for `/admin/events` (Redis pub/sub across processes) */
  bus: EventBus;
}

/**
 * Opens the message log, failures list and identities (MySQL, else Redis, else memory: log/create.ts) and the
 * recorder the channels write through. Called by deps.ts only.
 */
export async function openData(
  config: Config,
  d: { redis: RedisClient | null; prefix: string; log: Logger; metrics: Metrics; tuning?: DataTuning },
): Promise<DataWiring> {
  const log = d.log.child({ part: 'data' });
  const data = await createDataLayer(config.data, { redis: d.redis, redisPrefix: d.prefix, log, metrics: d.metrics, ...(d.tuning ? { tuning: d.tuning } : {}) });
  // external_userid is per corp, not per kf account: one kf customer across the corp's accounts is one identity.
  const identityAccount = (place: MessagePlace) => (place.channel === 'kf' && config.kf ? config.kf.corpId : place.account);
  const bus = createEventBus({ redis: d.redis, prefix: d.prefix, log });
  return {
    data,
    bus,
    // On the reply path (a webhook agent is told who asks): a store that hangs must not hold the answer.
    identify: (place) =>
      withTimeout(data.identities.resolve({ channel: place.channel, account: identityAccount(place), externalId: place.externalId }), IDENTIFY_TIMEOUT_MS),
    recorder: createRecorder({ log: publishingLog(data.log, bus, config.data.logContent), failures: data.failures, identities: data.identities, identityAccount, logger: log }),
  };
}

/** The operator API (ADMIN_TOKEN) and the OpenAI-compatible API (OPENAI_COMPAT_API_KEYS), or null when off. */
export function operatorApis(
  config: Config,
  d: {
    wiring: DataWiring;
    agents: AgentRouter;
    store: Store;
    jobs: JobQueue;
    kfApi: ApiClient | null;
    mpApi: ApiClient | null;
    version: string;
    checkReady: () => Promise<void>;
    metrics: Metrics;
    log: Logger;
  },
): { admin: AdminDeps | null; openaiCompat: OpenAiCompatDeps | null } {
  const { data } = d.wiring;
  const admin: AdminDeps | null = config.adminToken
    ? {
        token: config.adminToken,
        version: d.version,
        startedAtMs: Date.now(),
        role: config.role,
        storeKind: d.store.kind,
        channels: { kf: config.kf !== null, mp: config.mp !== null, bot: config.bots.length > 0 },
        agents: d.agents.all.map((a) => a.name),
        log: data.log,
        failures: data.failures,
        identities: data.identities,
        checkReady: d.checkReady,
        queueCounts: () => d.jobs.counts(),
        ...createCustomerOps({
          store: d.store,
          log: data.log,
          agents: d.agents,
          routedKfAccounts: Object.keys(config.routes).filter((k) => k.startsWith('kf:')).map((k) => k.slice(3)),
          kfApi: d.kfApi,
          mpApi: d.mpApi,
          identities: data.identities,
        }),
        actions: createOperatorActions({
          store: d.store,
          log: data.log,
          logger: d.log.child({ part: 'operator' }),
          recorder: d.wiring.recorder,
          bus: d.wiring.bus,
          kfApi: d.kfApi,
          mpApi: d.mpApi,
          handoff: config.handoff,
        }),
        events: d.wiring.bus,
        doctor: () => runDoctor(config, { botConnect: false }),
        metrics: d.metrics,
        session: sessionKeys(config.adminToken),
      }
    : null;
  const openaiCompat: OpenAiCompatDeps | null =
    config.openaiCompatKeys.length > 0
      ? { keys: config.openaiCompatKeys, agents: d.agents, identities: data.identities, recorder: d.wiring.recorder, store: d.store }
      : null;
  return { admin, openaiCompat };
}
