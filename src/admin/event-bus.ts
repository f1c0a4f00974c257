import { EventEmitter } from 'node:events';
import { duplicatePatient, type RedisClient } from '../store/redis-client.js';
import type { Logger } from 'pino';
import type { InboundKey, InboundSettlement, LogRow, MessageLog, NewLogRow } from '../log/types.js';

/** A message-log row as `/admin/events` sends it (the `/admin/messages` item shape; `id` is not known yet: null). */
export type MessageEvent = Pick<LogRow, 'at' | 'direction' | 'channel' | 'account' | 'customerId' | 'externalId' | 'msgid' | 'type' | 'content' | 'status' | 'agent' | 'latencyMs'> & {
  id: null;
};

/** What `/admin/events` streams: new log rows, inbound rows settled (`status` and LLM figures), and state changes. */
export type AdminEvent =
  | { type: 'message'; data: MessageEvent }
  | { type: 'settled'; data: InboundKey & InboundSettlement }
  | { type: 'state'; data: { customerId: string; state: 'bot' | 'human' } };

/** Carries admin events to every process's `/admin/events` listeners. */
export interface EventBus {
  /** Never waits, never throws (a lost event only makes a console refresh later). */
  publish(e: AdminEvent): void;
  /** @returns unsubscribe */
  subscribe(fn: (e: AdminEvent) => void): () => void;
  close(): Promise<void>;
}

/**
 * With Redis: PUBLISH on `<prefix>admin-events`, and one SUBSCRIBE connection per process, opened with the first
 * listener (a worker's rows must reach the console served by a web process). Without Redis: in-process only.
 */
export function createEventBus(o: { redis: RedisClient | null; prefix: string; log: Logger }): EventBus {
  const local = new EventEmitter();
  local.setMaxListeners(0);
  const channel = `${o.prefix}admin-events`;
  let sub: RedisClient | null = null;
  const emit = (e: AdminEvent) => local.emit('event', e);
  const ensureSubscribed = () => {
    if (!o.redis || sub) return;
    sub = duplicatePatient(o.redis);
    sub.on('error', (err: Error) => o.log.warn({ err: { message: err.message } }, 'admin events: redis subscriber error'));
    sub.on('message', (_channel: string, raw: string) => {
      try {
        emit(JSON.parse(raw) as AdminEvent);
      } catch {
        // not ours
      }
    });
    sub.subscribe(channel).catch((err: unknown) => o.log.warn({ err: { message: String(err) } }, 'admin events: cannot subscribe'));
  };
  return {
    publish: (e) => {
      if (!o.redis) return void emit(e);
      o.redis.publish(channel, JSON.stringify(e)).catch(() => undefined);
    },
    subscribe: (fn) => {
      ensureSubscribed();
      local.on('event', fn);
      return () => local.off('event', fn);
    },
    close: async () => {
      local.removeAllListeners();
      if (sub) sub.disconnect();
      sub = null;
    },
  };
}

/**
 * The log, with every new row and settlement also published on the bus.
 * @param keepContent LOG_MESSAGE_CONTENT: false publishes rows without their content, as the log keeps them
 */
export function publishingLog(log: MessageLog, bus: EventBus, keepContent: boolean): MessageLog {
  return {
    ...log,
    record: (row: NewLogRow) => {
      log.record(row);
      bus.publish({ type: 'message', data: toEvent(keepContent ? row : { ...row, content: '' }) });
    },
    settle: (key: InboundKey, change: InboundSettlement) => {
      log.settle(key, change);
      bus.publish({ type: 'settled', data: { ...key, ...change } });
    },
  };
}

function toEvent(r: NewLogRow): MessageEvent {
  return {
    id: null,
    at: new Date(r.atMs ?? Date.now()).toISOString(),
    direction: r.direction,
    channel: r.channel,
    account: r.account,
    customerId: r.customerId,
    externalId: r.externalId,
    msgid: r.msgid,
    type: r.type,
    content: r.content,
    status: r.status,
    agent: r.agent ?? null,
    latencyMs: r.latencyMs ?? null,
  };
}
