import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CustomerRecord } from '../identity/types.js';
import type { LogChannel, LogRow } from '../log/types.js';
import type { AdminDeps } from './deps.js';
import { MAX_PAGE } from './routes-messages.js';
import { customerParams, customerSchema, customersQuery, errorResponses, messageSchema } from './schemas.js';

/** Messages an export holds at most (every message of one customer in practice). */
const EXPORT_MAX_ROWS = 100_000;

type Params = { Params: { customerId: string } };

/** The customer routes: list, one customer, reset, export, erase. An unknown customer id is 404 on every one. */
export function registerCustomerRoutes(app: FastifyInstance, d: AdminDeps): void {
  const load = async (id: string, reply: FastifyReply): Promise<CustomerRecord | null> => {
    const c = await d.identities.get(id);
    if (!c) void reply.code(404).send({ error: 'customerId: no such customer' });
    return c;
  };
  const params = { params: customerParams };

  app.get<{ Querystring: { channel?: LogChannel; account?: string; externalId?: string; limit: number } }>(
    '/customers',
    { schema: { querystring: customersQuery, response: { 200: { type: 'object', properties: { items: { type: 'array', items: customerSchema } }, required: ['items'] }, ...errorResponses } } },
    async (request) => ({ items: await d.identities.find({ ...request.query, limit: Math.min(request.query.limit, MAX_PAGE) }) }),
  );

  app.get<Params>(
    '/customers/:customerId',
    {
      schema: {
        ...params,
        response: {
          200: {
            type: 'object',
            properties: { ...customerSchema.properties, state: { type: 'string', enum: ['bot', 'human'] }, recent: { type: 'array', items: messageSchema } },
            required: [...customerSchema.required, 'state', 'recent'],
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const c = await load(request.params.customerId, reply);
      if (!c) return reply;
      const [state, recent, nickname] = await Promise.all([d.stateOf(c), d.log.query({ customerId: c.customerId, limit: 20, cursor: null }), d.nicknameOf(c)]);
      return { ...c, nickname, state, recent: recent.items };
    },
  );

  app.post<Params>('/customers/:customerId/reset', { schema: { ...params, response: okSchema('reset') } }, async (request, reply) => {
    const c = await load(request.params.customerId, reply);
    if (!c) return reply;
    await d.resetConversation(c);
    request.log.info({ customerId: c.customerId }, 'conversation reset by an operator');
    return { reset: true };
  });

  app.get<Params>('/customers/:customerId/export', { schema: params }, async (request, reply) => {
    const c = await load(request.params.customerId, reply);
    if (!c) return reply;
    const messages: LogRow[] = [];
    for (let cursor: string | null = null; messages.length < EXPORT_MAX_ROWS; ) {
      const p = await d.log.query({ customerId: c.customerId, limit: MAX_PAGE, cursor });
      messages.push(...p.items);
      if (!p.nextCursor) break;
      cursor = p.nextCursor;
    }
    return { exportedAt: new Date().toISOString(), customer: c, messages, conversationState: await d.exportState(c) };
  });

  app.delete<Params>('/customers/:customerId', { schema: { ...params, response: okSchema('erased') } }, async (request, reply) => {
    const c = await load(request.params.customerId, reply);
    if (!c) return reply;
    // State first (it needs the log to find the customer's accounts), then the log, then the identity itself.
    await d.eraseState(c);
    const rows = await d.log.forgetCustomer(c.customerId);
    await d.failures.forgetCustomer(c.customerId);
    await d.identities.erase(c.customerId);
    request.log.info({ customerId: c.customerId, rows }, 'customer erased by an operator');
    return { erased: true };
  });
}

function okSchema(field: string) {
  return { 200: { type: 'object', properties: { [field]: { type: 'boolean' } }, required: [field] }, ...errorResponses };
}
