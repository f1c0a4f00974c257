import type { FastifyInstance } from 'fastify';
import type { LogChannel } from '../log/types.js';
import type { AdminDeps } from './deps.js';
import { errorResponses, failureParams, failureSchema, messageSchema, messagesQuery, pageQuery, statusSchema } from './schemas.js';

/** `limit` over this is clamped, not refused (docs/configuration.md "Operator API"). */
export const MAX_PAGE = 200;

interface MessagesQuery {
  channel?: LogChannel;
  account?: string;
  customer?: string;
  direction?: 'in' | 'out';
  status?: string;
  from?: string;
  to?: string;
  q?: string;
  limit: number;
  cursor?: string;
}

/** `GET /admin/status`, `GET /admin/messages`, `GET /admin/failures`, `POST /admin/failures/:id/replay`. */
export function registerMessageRoutes(app: FastifyInstance, d: AdminDeps): void {
  app.get('/status', { schema: { response: { 200: statusSchema, ...errorResponses } } }, async () => {
    const zero = { received: 0, answered: 0, fallback: 0, failed: 0 };
    const [redisReady, queue, lastHour] = await Promise.all([
      d.checkReady().then(
        () => true,
        () => false,
      ),
      d.queueCounts().catch(() => ({ waiting: 0, active: 0, delayed: 0 })),
      d.log.counts(Date.now() - 3600_000).catch(() => null),
    ]);
    const logHealth = d.log.health();
    return {
      version: d.version,
      uptimeS: Math.floor((Date.now() - d.startedAtMs) / 1000),
      role: d.role,
      store: d.storeKind,
      log: d.log.kind,
      // Replies do not need MySQL (/readyz stays green), but an operator should see it is down.
      ready: redisReady && logHealth.ok && lastHour !== null,
      channels: d.channels,
      agents: d.agents,
      queue,
      lastHour: lastHour ?? zero,
      logHealth,
    };
  });

  app.get<{ Querystring: MessagesQuery }>(
    '/messages',
    { schema: { querystring: messagesQuery, response: { 200: page(messageSchema), ...errorResponses } } },
    async (request) => {
      const q = request.query;
      return d.log.query({
        ...(q.channel ? { channel: q.channel } : {}),
        ...(q.account ? { account: q.account } : {}),
        ...(q.customer ? { customerId: q.customer } : {}),
        ...(q.direction ? { direction: q.direction } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.from ? { fromMs: Date.parse(q.from) } : {}),
        ...(q.to ? { toMs: Date.parse(q.to) } : {}),
        ...(q.q ? { text: q.q } : {}),
        limit: Math.min(q.limit, MAX_PAGE),
        cursor: q.cursor ?? null,
      });
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/failures',
    { schema: { querystring: pageQuery, response: { 200: page(failureSchema), ...errorResponses } } },
    async (request) => d.failures.list(Math.min(request.query.limit, MAX_PAGE), request.query.cursor ?? null),
  );

  app.post<{ Params: { id: string } }>(
    '/failures/:id/replay',
    {
      schema: {
        params: failureParams,
        response: {
          200: {
            type: 'object',
            properties: { replayed: { type: 'boolean' }, errcode: { type: ['integer', 'null'] }, reason: { type: ['string', 'null'] } },
            required: ['replayed'],
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const f = await d.failures.get(request.params.id);
      if (!f) return reply.code(404).send({ error: 'id: no such failure' });
      const r = await d.replayFailure(f);
      if (r.ok) {
        await d.failures.remove(f.id);
        request.log.info({ failure: f.id, msgid: f.msgid }, 'failed reply replayed by an operator');
        return { replayed: true, errcode: null, reason: null };
      }
      await d.failures.update(f.id, { errcode: r.errcode, reason: r.reason, sent: r.sent });
      return { replayed: false, errcode: r.errcode, reason: r.reason };
    },
  );
}

/** `{items, nextCursor}` of `item`. */
function page(item: object) {
  return {
    type: 'object',
    properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } },
    required: ['items', 'nextCursor'],
  } as const;
}
