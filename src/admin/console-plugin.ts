import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionKeys } from './deps.js';
import { bearerMatches } from '../http/bearer.js';
import { csrfOf, issueSession, SESSION_COOKIE, SESSION_TTL_MS, validCsrf, validSession } from './session.js';

/** Login attempts per address per minute (right or wrong): a typo is fine, guessing is not. */
const LOGINS_PER_MIN = 10;
/** The built console (`npm run build` → vite → dist/console/): the same path from src/admin (tsx) and dist/admin (built). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export interface ConsoleDeps {
  /** ADMIN_TOKEN */
  token: string;
  session: SessionKeys;
  /** where the built files are (default CONSOLE_DIR) */
  dir?: string;
}

/**
 * `/console` (interface.md): the operator console's files, and its log-in. `POST /console/login` takes a form
 * (`token` = ADMIN_TOKEN; @fastify/formbody, registered in this scope only, never on the callback routes) and sets
 * a signed, HttpOnly, SameSite=Strict session cookie (Secure when the request came over TLS, as a proxy reports it);
 * `GET /console/session` gives the page its CSRF token; `POST /console/logout` (with that token) clears the cookie.
 */
export async function consolePlugin(app: FastifyInstance, d: ConsoleDeps): Promise<void> {
  const dir = d.dir ?? CONSOLE_DIR;
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 4096 });
  await app.register(rateLimit, { global: false });
  const sessionOf = (request: FastifyRequest): string | null => {
    const v = request.cookies[SESSION_COOKIE];
    return v && validSession(d.session, v) ? v : null;
  };
  // The app trusts X-Forwarded-Proto from a reverse proxy on a loopback/private address (app.ts trustProxy), so
  // request.protocol is the scheme the browser used.
  const secure = (request: FastifyRequest) => request.protocol === 'https';
  const back = (reply: FastifyReply, query = '') => reply.code(303).header('location', `/console/${query}`).send();
  // A browser posted the form: past the login limit it goes back to the page, which says to wait, not to raw JSON.
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.statusCode === 429) return back(reply, '?login=limited');
    request.log.warn({ err: { message: err.message }, status: err.statusCode }, 'console request refused');
    return reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : 500).send({ error: err.statusCode && err.statusCode < 500 ? err.message : 'internal error' });
  });

  app.post<{ Body: { token?: unknown } }>(
    '/login',
    { config: { rateLimit: { max: LOGINS_PER_MIN, timeWindow: 60_000, errorResponseBuilder: () => ({ statusCode: 429, error: 'too many login attempts: wait a minute' }) } } },
    async (request, reply) => {
      const token = typeof request.body?.token === 'string' ? request.body.token : '';
      // Same constant-time compare as the Bearer header.
      if (!bearerMatches(`Bearer ${token}`, d.token)) {
        request.log.warn({ ip: request.ip }, 'console login refused (wrong token)');
        return back(reply, '?login=failed');
      }
      reply.setCookie(SESSION_COOKIE, issueSession(d.session), {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: secure(request),
        maxAge: Math.floor(SESSION_TTL_MS / 1000),
      });
      request.log.info({ ip: request.ip }, 'console login');
      return back(reply);
    },
  );
  app.post<{ Body: { csrf?: unknown } }>('/logout', async (request, reply) => {
    const session = sessionOf(request);
    if (session && validCsrf(d.session, session, typeof request.body?.csrf === 'string' ? request.body.csrf : undefined)) {
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
    }
    return back(reply);
  });
  app.get('/session', async (request, reply) => {
    const session = sessionOf(request);
    if (!session) return reply.code(401).send({ error: 'unauthorized' });
    return { csrf: csrfOf(d.session, session) };
  });

  if (!existsSync(join(dir, 'index.html'))) {
    // A server run from source without `npm run build`: say what to do rather than a bare 404.
    const notBuilt = async (_request: FastifyRequest, reply: FastifyReply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('the console is not built: run `npm run build` (it builds the server and the console)');
    app.get('', notBuilt);
    app.get('/*', notBuilt);
    return;
  }
  await app.register(fastifyStatic, { root: dir, prefix: '/', index: ['index.html'], wildcard: true, maxAge: '1h' });
  // `/console` itself is the page too (its asset URLs are absolute, /console/assets/…); the page is never cached, so
  // a new build's asset names reach every browser.
  app.get('', async (_request, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html'));
}
