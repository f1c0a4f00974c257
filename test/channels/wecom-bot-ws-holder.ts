/**
 * A process holding smart-bot long connections, for wecom-bot-ws.test.ts to kill -9. Environment: REDIS_URL, PREFIX
 * (the store's key prefix), WS_URL, BOT_ID, SECRET, HOLDER. Prints `connected` on stdout once the bot is connected.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startBotConnections } from '../../src/channels/wecom-bot/ws-connections.js';
import { createMetrics } from '../../src/metrics.js';
import { createRedisStore } from '../../src/store/redis.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const botId = env('BOT_ID');
const redis = new Redis(env('REDIS_URL'), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
await redis.connect();
const connections = startBotConnections({
  bots: [{ botId, secret: env('SECRET') }],
  wsUrl: env('WS_URL'),
  store: createRedisStore(redis, env('PREFIX')),
  holderId: env('HOLDER'),
  log: pino({ level: 'warn' }, pino.destination(2)),
  metrics: createMetrics(),
  onCallback: () => undefined,
});
const poll = setInterval(() => {
  if (!connections.isConnected(botId)) return;
  clearInterval(poll);
  process.stdout.write('connected\n');
}, 20);
