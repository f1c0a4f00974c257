import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './deps.js';

/** A comment line this often keeps proxies and browsers from closing an idle stream (interface.md: every 15 s). */
export const EVENTS_HEARTBEAT_MS = 15_000;

/**
 * `GET /admin/events`: Server-Sent Events (`message`, `settled`, `state`) as they happen in any process, for the
 * console (a browser EventSource, with the session cookie) and scripts (Bearer). The response is never cut by the
 * server's request timeout; it ends when the client goes away or the server shuts down.
 */
export function registerEventRoutes(app: FastifyInstance, d: AdminDeps): void {
  const open = new Set<() => void>();
  // app.close() waits for open connections: the streams end first, so a console tab never holds up a shutdown.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });
  app.get('/events', { schema: { hide: true } }, (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx: do not buffer the stream
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const unsubscribe = d.events.subscribe((e) => {
      res.write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), EVENTS_HEARTBEAT_MS);
    const end = () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(end);
      if (!res.writableEnded) res.end();
    };
    open.add(end);
    request.raw.on('close', end);
  });
}
