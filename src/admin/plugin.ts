import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { bearerMatches } from '../http/bearer.js';
import { LogUnavailableError } from '../log/types.js';
import type { AdminDeps } from './deps.js';
import { registerCustomerRoutes } from './routes-customers.js';
import { registerMessageRoutes } from './routes-messages.js';
import { registerActionRoutes } from './routes-actions.js';
import { registerEventRoutes } from './routes-events.js';
import { registerSummaryRoute } from './routes-summary.js';
import { SESSION_COOKIE, validCsrf, validSession } from './session.js';

/** Wrong-token attempts per address per minute before 429: enough for a typo, far too few to guess a token. */
const FAILED_AUTH_PER_MIN = 10;

/**
 * `/admin/*` (docs/configuration.md "Operator API"), registered only when ADMIN_TOKEN is set: every route needs
 * `Authorization: Bearer <ADMIN_TOKEN>` (constant-time compare; 401 `{"error":"unauthorized"}`), wrong attempts are
 * limited per address by @fastify/rate-limit (requests with the right token are never counted), queries are
 * validated by JSON schema (400 `{"error":"<field>: <problem>"}`), and `/admin/openapi.json` is generated from
 * those schemas by @fastify/swagger.
 */
export async function adminPlugin(app: FastifyInstance, d: AdminDeps): Promise<void> {
  await app.register(cookie);
  // The app reads every body as a string (the callbacks' parser); the operator's JSON bodies (`reply`) are parsed
  // here with Fastify's own JSON parser, prototype-poisoning keys refused.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 16 * 1024 }, app.getDefaultJsonParser('error', 'error'));
  const session = d.session;
  /** The console's session cookie, when valid (a browser's EventSource cannot send a Bearer header). */
  const sessionOf = (request: FastifyRequest): string | null => {
    const value = request.cookies[SESSION_COOKIE];
    return session && value && validSession(session, value) ? value : null;
  };
  await app.register(rateLimit, {
    max: FAILED_AUTH_PER_MIN,
    timeWindow: 60_000,
    allowList: (request) => bearerMatches(request.headers.authorization, d.token) || sessionOf(request) !== null,
    errorResponseBuilder: () => ({ statusCode: 429, error: 'too many failed attempts: wait a minute' }),
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'wechat-ai-bridge operator API', version: d.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // preValidation, not onRequest: @fastify/rate-limit counts in its own route-level onRequest hook, which runs
  // after scope-level onRequest hooks; a 401 sent earlier would never be counted.
  app.addHook('preValidation', async (request, reply) => {
    if (bearerMatches(request.headers.authorization, d.token)) return;
    const cookieSession = sessionOf(request);
    if (!cookieSession || !session) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
    // A cookie rides along with any request the browser makes, a forged cross-site one too: changes need the token
    // only the console's own page can read.
    const safe = request.method === 'GET' || request.method === 'HEAD';
    if (!safe && !validCsrf(session, cookieSession, headerOf(request, 'x-csrf-token'))) {
      return reply.code(403).send({ error: 'csrf: missing or wrong x-csrf-token' });
    }
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const field = first?.instancePath.replace(/^\//, '') || String((first?.params as { missingProperty?: string; additionalProperty?: string } | undefined)?.missingProperty ?? (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty ?? err.validationContext ?? 'request');
      return reply.code(400).send({ error: `${field}: ${first?.message ?? 'is invalid'}` });
    }
    if (err instanceof LogUnavailableError) return reply.code(503).send({ error: 'log unavailable' });
    if (err.statusCode === 429) return reply.code(429).send({ error: 'too many failed attempts: wait a minute' });
    request.log.error({ err }, 'admin request failed');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  registerMessageRoutes(app, d);
  registerCustomerRoutes(app, d);
  registerActionRoutes(app, d);
  registerEventRoutes(app, d);
  registerSummaryRoute(app, d);
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
