/**
 * JSON schemas of the operator API (docs/configuration.md "Operator API"): Fastify validates every query and
 * parameter with them and serialises every answer through them, and @fastify/swagger turns them into
 * `/admin/openapi.json`, so the published description is the one the server enforces.
 */

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const channel = { type: 'string', enum: ['kf', 'mp', 'bot', 'openai-compat'] } as const;
const error = { type: 'object', properties: { error: str }, required: ['error'] } as const;

/** A log row as `/admin/messages` and a customer's `recent` show it. */
export const messageSchema = {
  type: 'object',
  properties: {
    id: str,
    at: { type: 'string', format: 'date-time' },
    direction: { type: 'string', enum: ['in', 'out'] },
    channel,
    account: str,
    customerId: str,
    externalId: str,
    msgid: str,
    type: str,
    content: str,
    length: { type: 'integer' },
    status: str,
    agent: nullableStr,
    latencyMs: nullableInt,
    inputTokens: nullableInt,
    outputTokens: nullableInt,
    replyTo: nullableStr,
    errcode: nullableInt,
  },
  required: ['id', 'at', 'direction', 'channel', 'account', 'customerId', 'externalId', 'msgid', 'type', 'content', 'status', 'agent', 'latencyMs'],
} as const;

const identitySchema = { type: 'object', properties: { channel, account: str, externalId: str }, required: ['channel', 'account', 'externalId'] } as const;

/** A customer as `/admin/customers` lists it. */
export const customerSchema = {
  type: 'object',
  properties: {
    customerId: str,
    identities: { type: 'array', items: identitySchema },
    nickname: nullableStr,
    firstSeen: { type: 'string', format: 'date-time' },
    lastSeen: { type: 'string', format: 'date-time' },
  },
  required: ['customerId', 'identities', 'nickname', 'firstSeen', 'lastSeen'],
} as const;

/** Errors of every route (400 bad query, 401 token, 404 unknown, 409 conflict, 429 too many attempts, 503 log down). */
export const errorResponses = { 400: error, 401: error, 404: error, 409: error, 429: error, 503: error } as const;

/** `GET /admin/messages` query: every filter optional; times ISO-8601, inclusive; `limit` over 200 is clamped. */
export const messagesQuery = {
  type: 'object',
  properties: {
    channel,
    account: { type: 'string', maxLength: 128 },
    customer: { type: 'string', maxLength: 64 },
    direction: { type: 'string', enum: ['in', 'out'] },
    status: { type: 'string', enum: ['pending', 'answered', 'fallback', 'command', 'skipped', 'failed', 'sent'] },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    q: { type: 'string', maxLength: 200, description: 'text the content contains' },
    limit: { type: 'integer', minimum: 1, default: 50 },
    cursor: { type: 'string', maxLength: 128 },
  },
  additionalProperties: false,
} as const;

export const customersQuery = {
  type: 'object',
  properties: {
    channel,
    account: { type: 'string', maxLength: 128 },
    externalId: { type: 'string', maxLength: 256 },
    limit: { type: 'integer', minimum: 1, default: 50 },
  },
  additionalProperties: false,
} as const;

export const pageQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, default: 50 }, cursor: { type: 'string', maxLength: 128 } },
  additionalProperties: false,
} as const;

export const customerParams = { type: 'object', properties: { customerId: { type: 'string', maxLength: 64 } }, required: ['customerId'] } as const;
export const failureParams = { type: 'object', properties: { id: { type: 'string', maxLength: 128 } }, required: ['id'] } as const;

/** A failed reply as `/admin/failures` lists it. */
export const failureSchema = {
  type: 'object',
  properties: {
    id: str,
    at: { type: 'string', format: 'date-time' },
    channel: { type: 'string', enum: ['kf', 'mp'] },
    account: str,
    customerId: str,
    externalId: str,
    msgid: str,
    parts: { type: 'array', items: str },
    sent: { type: 'integer' },
    partIds: { type: 'array', items: str },
    errcode: nullableInt,
    reason: str,
    replays: { type: 'integer' },
  },
  required: ['id', 'at', 'channel', 'account', 'customerId', 'externalId', 'msgid', 'parts', 'sent', 'errcode', 'reason'],
} as const;

const counts = (names: readonly string[]) =>
  ({ type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'integer' }])), required: names }) as const;

/** `GET /admin/status`. */
export const statusSchema = {
  type: 'object',
  properties: {
    version: str,
    uptimeS: { type: 'integer' },
    role: { type: 'string', enum: ['all', 'web', 'worker'] },
    store: { type: 'string', enum: ['memory', 'redis'] },
    log: { type: 'string', enum: ['memory', 'redis', 'mysql'] },
    ready: { type: 'boolean' },
    channels: { type: 'object', properties: { kf: { type: 'boolean' }, mp: { type: 'boolean' }, bot: { type: 'boolean' } }, required: ['kf', 'mp', 'bot'] },
    agents: { type: 'array', items: str },
    queue: counts(['waiting', 'active', 'delayed']),
    lastHour: counts(['received', 'answered', 'fallback', 'failed']),
    logHealth: {
      type: 'object',
      properties: { ok: { type: 'boolean' }, buffered: { type: 'integer' }, dropped: { type: 'integer' }, lastError: nullableStr },
    },
  },
  required: ['version', 'uptimeS', 'role', 'store', 'log', 'ready', 'channels', 'agents', 'queue', 'lastHour'],
} as const;
