import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CustomerRecord } from '../identity/types.js';
import type { ActionResult } from './operator-actions.js';
import type { AdminDeps } from './deps.js';
import { customerParams, errorResponses } from './schemas.js';

type Params = { Params: { customerId: string } };

/** An operator's message is one WeChat text; kf and OA both cap a text at 2048 bytes (~680 CJK characters). */
const MAX_REPLY_CHARS = 2000;
const stateSchema = { 200: { type: 'object', properties: { state: { type: 'string', enum: ['bot', 'human'] } }, required: ['state'] }, ...errorResponses } as const;

/**
 * `POST /admin/customers/:customerId/reply` `{text}`, `/handoff`, `/resume` (interface.md "Operator API"): the
 * operator steps into a conversation and gives it back. 404 for an unknown customer, 409 when the customer's
 * channel cannot do it, 502 when WeCom/WeChat refused.
 */
export function registerActionRoutes(app: FastifyInstance, d: AdminDeps): void {
  /** Loads the customer (404 when unknown), runs the action, and turns its result into `{state}` or the error. */
  const withCustomer =
    (action: (c: CustomerRecord, body: { text?: string }) => Promise<ActionResult>) =>
    async (request: FastifyRequest<{ Params: { customerId: string } }>, reply: FastifyReply) => {
      const c = await d.identities.get(request.params.customerId);
      if (!c) return reply.code(404).send({ error: 'customerId: no such customer' });
      const result = await action(c, (request.body ?? {}) as { text?: string });
      if (!result.ok) return reply.code(result.status).send({ error: result.error });
      return { state: result.state };
    };

  app.post<Params & { Body: { text: string } }>(
    '/customers/:customerId/reply',
    {
      schema: {
        params: customerParams,
        // At least one character that is not white space: an empty WeChat message is refused by the platform anyway.
        body: { type: 'object', properties: { text: { type: 'string', pattern: '\\S', maxLength: MAX_REPLY_CHARS } }, required: ['text'], additionalProperties: false },
        response: stateSchema,
      },
    },
    withCustomer((c, body) => d.actions.reply(c, body.text ?? '')),
  );
  app.post<Params>('/customers/:customerId/handoff', { schema: { params: customerParams, response: stateSchema } }, withCustomer((c) => d.actions.handOff(c)));
  app.post<Params>('/customers/:customerId/resume', { schema: { params: customerParams, response: stateSchema } }, withCustomer((c) => d.actions.resume(c)));
}
