import underPressure from '@fastify/under-pressure';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AdminDeps } from './admin/deps.js';
import { adminPlugin } from './admin/plugin.js';
import { consolePlugin } from './admin/console-plugin.js';
import { registerMpRoutes, type MpRouteDeps } from './channels/wechat-mp/routes.js';
import { openAiCompatPlugin, type OpenAiCompatDeps } from './openai-compat/plugin.js';
import { registerKfRoutes, type KfRouteDeps } from './channels/wecom-kf/routes.js';
import { registerBotRoutes, type BotRouteDeps } from './channels/wecom-bot/routes.js';
import { HttpError } from './http/http-error.js';
import { bearerMatches } from './http/bearer.js';
import { parseQuery } from './http/querystring.js';
import type { ReplayClaim } from './http/replay-guard.js';
import type { Metrics } from './metrics.js';

/** Everything the HTTP app needs, built elsewhere (deps.ts, or a test with fakes). */
export interface AppDeps {
  log: Logger;
  metrics: Metrics;
  /** MAX_BODY_BYTES */
  maxBodyBytes: number;
  /** METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <token>`; null: open */
  metricsToken?: string | null;
  /** resolves when every configured backing service answers (for /readyz); rejects otherwise */
  checkReady: () => Promise<void>;
  /** the kf channel, or null when it is not configured (its routes then answer 404) */
  kf: KfRouteDeps | null;
  /** the Official Account channel, or null when it is not configured (its routes then answer 404) */
  mp: MpRouteDeps | null;
  /** the smart bots' callback routes, or null/absent when no bot is configured (the route then answers 404) */
  bot?: BotRouteDeps | null;
  /** the operator API, or null when ADMIN_TOKEN is unset (its routes then answer 404) */
  admin?: AdminDeps | null;
  /** the OpenAI-compatible API, or null when OPENAI_COMPAT_API_KEYS is unset (its routes then answer 404) */
  openaiCompat?: OpenAiCompatDeps | null;
  /** event-loop delay (ms) past which callbacks answer 503 so WeChat retries (default 1000; tests lower it) */
  maxEventLoopDelayMs?: number;
  /** connection limits (defaults: {@link SERVER_LIMITS}; tests shorten the timeouts) */
  limits?: Partial<ServerLimits>;
}

/** What one client may hold of the server: time to send a request, idle keep-alive time, connections at once. */
export interface ServerLimits {
  /** receiving one request's headers and body, ms; the response is not cut (OA passive holds, SSE) */
  requestTimeoutMs: number;
  /** how often Node checks connections against `requestTimeoutMs`, ms: a slow body is cut at most this late */
  checkIntervalMs: number;
  /** an idle keep-alive connection is closed after this, ms */
  keepAliveTimeoutMs: number;
  /** connections at once; past it new sockets are closed at once */
  maxConnections: number;
}

/**
 * docs/configuration.md ("Cost of hostile input"): a request's headers and body within 15 s, ≥ 10,000 connections at once.
 * Keep-alive outlives the 60 s idle timeout of common load balancers, so a proxy never reuses a socket we just
 * closed (a 502 for a callback).
 */
export const SERVER_LIMITS: ServerLimits = {
  requestTimeoutMs: 15_000,
  checkIntervalMs: 1_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 20_000,
};

declare module 'fastify' {
  interface FastifyRequest {
    /** set by a callback route when the outcome is not told by the status (e.g. `ignored`) */
    callbackOutcome: string | null;
    /** the replay guard's claim on this request, forgotten when the answer is not 2xx (http/replay-guard.ts) */
    replayClaim: ReplayClaim | null;
  }
}

const OUTCOMES: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 413: 'too_large', 503: 'unavailable' };

/** A process whose event loop lags this much would miss WeChat's 5 s anyway: better a quick 503 and a retry. */
const DEFAULT_MAX_EVENT_LOOP_DELAY_MS = 1000;

/**
 * Builds the Fastify app: no I/O of its own, no listening (main.ts does that). Callback bodies are read as raw
 * text whatever their Content-Type (WeChat sends text/xml, others send none), query values keep a raw `+`, and
 * every refusal is a short plain-text body with no stack trace.
 */
export function buildApp(d: AppDeps): FastifyInstance {
  const limits = { ...SERVER_LIMITS, ...d.limits };
  const app = Fastify({
    // Node measures both timeouts from the request's first byte and only until it is received; a slow-loris body
    // trickled a byte every few seconds is answered 408 and closed within checkIntervalMs of the limit.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs },
    loggerInstance: d.log as FastifyBaseLogger,
    // One line per meaningful event, not two per request: refusals and failures are logged by the handlers.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: d.maxBodyBytes,
    routerOptions: { querystringParser: parseQuery },
    return503OnClosing: true,
    // A reverse proxy on the host or in the compose network (the `tls` profile's nginx) reports the client's address
    // and scheme: trusted from loopback and private addresses only, so a client on the internet cannot forge it
    // (per-address limits, such as the console's login, see the real client).
    trustProxy: ['loopback', 'linklocal', 'uniquelocal', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'],
    // pino builds a child (with redaction compiled) per call; a per-request child costs more than the whole
    // signature check at thousands of callbacks a second. Handlers bind what matters (channel, msgid) themselves.
    childLoggerFactory: (logger) => logger,
  });

  app.server.maxConnections = limits.maxConnections;
  app.decorateRequest('callbackOutcome', null);
  app.decorateRequest('replayClaim', null);
  // Only an accepted request is remembered: a 503 (Redis down, an OA delivery held past WeChat's deadline) is
  // forgotten before WeChat sees it, so its retry is handled as new.
  app.addHook('onSend', async (request, reply) => {
    if (request.replayClaim && (reply.statusCode < 200 || reply.statusCode >= 300)) await request.replayClaim.release();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
    const reason = err instanceof HttpError ? err.reason : (err.code ?? 'error');
    if (status >= 500 && !(err instanceof HttpError)) request.log.error({ err }, 'request failed');
    else {
      const hint = err instanceof HttpError ? err.hint : undefined;
      request.log.warn({ status, reason, url: request.routeOptions.url, ...(hint ? { hint } : {}) }, 'request refused');
    }
    const text = status >= 500 ? 'temporarily unavailable' : status === 413 ? 'payload too large' : err.message;
    return reply.code(status).type('text/plain; charset=utf-8').send(text);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).type('text/plain; charset=utf-8').send('not found'));

  app.addHook('onResponse', async (request, reply) => {
    const channel = (request.routeOptions.config as { channel?: string } | undefined)?.channel;
    if (!channel) return;
    const status = reply.statusCode;
    const outcome =
      request.callbackOutcome ??
      (status === 200 ? (request.method === 'GET' ? 'verified' : 'accepted') : (OUTCOMES[status] ?? `http_${status}`));
    d.metrics.callbacks.inc({ channel, outcome });
    if (request.method === 'POST') d.metrics.ackDuration.observe({ channel }, reply.elapsedTime / 1000);
  });

  // @fastify/under-pressure samples the event loop; when it lags, callbacks get 503 at once (WeChat retries,
  // perhaps on another replica) instead of hanging past WeChat's deadline. Health and metrics keep answering.
  void app.register(underPressure, {
    maxEventLoopDelay: d.maxEventLoopDelayMs ?? DEFAULT_MAX_EVENT_LOOP_DELAY_MS,
    pressureHandler: (request, reply, type, value) => {
      const channel = (request.routeOptions.config as { channel?: string } | undefined)?.channel;
      if (!channel) return;
      request.callbackOutcome = 'overloaded';
      request.log.warn({ type, value, channel }, 'overloaded: callback refused with 503');
      void reply.code(503).header('retry-after', '1').type('text/plain; charset=utf-8').send('temporarily unavailable');
    },
  });

  app.get('/healthz', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ok'));
  app.get('/readyz', async (request, reply) => {
    try {
      await d.checkReady();
      return reply.type('text/plain; charset=utf-8').send('ready');
    } catch (e) {
      request.log.warn({ err: e }, 'not ready');
      return reply.code(503).type('text/plain; charset=utf-8').send('not ready');
    }
  });
  app.get('/metrics', async (request, reply) => {
    if (d.metricsToken && !bearerMatches(request.headers.authorization, d.metricsToken)) {
      return reply.code(401).header('www-authenticate', 'Bearer').type('text/plain; charset=utf-8').send('unauthorized');
    }
    return reply.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
  });

  if (d.kf) registerKfRoutes(app, d.kf);
  if (d.mp) registerMpRoutes(app, d.mp);
  if (d.bot) registerBotRoutes(app, d.bot);
  const admin = d.admin;
  if (admin) void app.register(async (scope) => adminPlugin(scope, admin), { prefix: '/admin' });
  if (admin?.session) {
    const session = admin.session;
    void app.register(async (scope) => consolePlugin(scope, { token: admin.token, session }), { prefix: '/console' });
  }
  const v1 = d.openaiCompat;
  if (v1) void app.register(async (scope) => openAiCompatPlugin(scope, v1), { prefix: '/v1' });
  return app;
}
