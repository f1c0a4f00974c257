/**
 * The lifecycle shared by the loopback HTTP fakes (openai, dify, coze, ollama): request recording for
 * `waitForRequests`, timers that `close()` cancels, open-socket tracking, listening on 127.0.0.1 (random port) and an
 * idempotent `close()`. No module-level state: every fake makes its own with {@link createFakeLifecycle}.
 * Units: milliseconds.
 */
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What every recorded request of a fake carries. */
export interface FakeLifecycleRequest {
  /** True once the client closed the connection before the server finished its response. */
  closedByClient: boolean;
}

/**
 * What every scripted fake (OpenAI, Ollama, Coze, webhook) offers besides its own extras: the recorded requests, a
 * queue of behaviours consumed one per accepted request, a default behaviour, waiting for requests, closing.
 */
export interface ScriptedFake<R, B> {
  requests: R[];
  /** Queues behaviours, consumed one per accepted request, in order. */
  script(...behaviors: B[]): void;
  /** Behaviour used when the queue is empty; initially `{kind:'answer'}`. */
  setDefault(b: B): void;
  /** Resolves once `n` requests were recorded with their bodies read; rejects after `timeoutMs` (default 2000). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Stops listening, destroys every open socket and cancels every timer. */
  close(): Promise<void>;
}

/** The lifecycle of one running fake; see {@link createFakeLifecycle}. */
export interface FakeLifecycle<R extends FakeLifecycleRequest> {
  /** True once `close()` has begun; request handlers re-check it after every await. */
  readonly closing: boolean;
  /** Records `rec` (appended to `requests`, body not read yet), tracks whether the client goes away before the
   *  response is finished, and runs `handle` with a `destroy` that is not counted as the client going away. When
   *  `handle` rejects: `destroy()` if the headers were sent, else `fail()` (the fake's own HTTP 500). */
  serve(rec: R, res: ServerResponse, handle: (destroy: () => void) => Promise<void>, fail: () => void): void;
  /** Marks `rec`'s body as read and resolves the `waitForRequests` calls that are now satisfied. */
  received(rec: R): void;
  /** A timer that `close()` cancels (the promise then resolves early; callers re-check liveness). */
  sleep: (ms: number) => Promise<void>;
  /** Resolves once `n` requests were recorded with their bodies read; rejects after `timeoutMs` (default 2000) with
   *  `fake NAME: GOT/N requests after MS ms`, or on `close()` with `fake NAME closed`. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Tracks `server`'s sockets and listens on 127.0.0.1, random port; resolves with that port. */
  listen(server: Server): Promise<number>;
  /** Cancels every timer, rejects every waiter, stops `server` listening and destroys every open socket. Later calls
   *  do nothing. */
  close(server: Server): Promise<void>;
}

/** Creates the lifecycle of a fake named `name` (used in error texts) that records its requests in `requests`. */
export function createFakeLifecycle<R extends FakeLifecycleRequest>(name: string, requests: R[]): FakeLifecycle<R> {
  const pending = new WeakSet<R>();
  let closing = false;
  const sockets = new Set<Socket>();
  const timers = new Map<NodeJS.Timeout, () => void>();
  const waiters = new Set<{ check: () => boolean; resolve: () => void; reject: (e: Error) => void }>();

  return {
    get closing() {
      return closing;
    },
    serve(rec, res, handle, fail) {
      requests.push(rec);
      pending.add(rec);
      let serverDestroyed = false;
      res.on('error', () => undefined);
      res.on('close', () => void (rec.closedByClient ||= !res.writableFinished && !serverDestroyed && !closing));
      const destroy = (): void => void ((serverDestroyed = true), res.destroy());
      handle(destroy).catch(() => (res.headersSent ? destroy() : fail()));
    },
    received(rec) {
      pending.delete(rec);
      for (const w of waiters) if (w.check()) void (waiters.delete(w), w.resolve());
    },
    sleep: (ms) =>
      ms <= 0 || closing
        ? Promise.resolve()
        : new Promise((resolve) => {
            const t = setTimeout(() => (timers.delete(t), resolve()), ms);
            timers.set(t, resolve);
          }),
    waitForRequests(n, timeoutMs = 2000) {
      const check = (): boolean => requests.length >= n && requests.slice(0, n).every((r) => !pending.has(r));
      if (check()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = {
          check,
          resolve: () => (clearTimeout(t), timers.delete(t), resolve()),
          reject: (e: Error) => (clearTimeout(t), timers.delete(t), reject(e)),
        };
        const t = setTimeout(() => (waiters.delete(w), w.reject(new Error(`fake ${name}: ${requests.length}/${n} requests after ${timeoutMs} ms`))), timeoutMs);
        timers.set(t, () => undefined);
        waiters.add(w);
      });
    },
    async listen(server) {
      server.on('connection', (s) => void (sockets.add(s), s.once('close', () => sockets.delete(s))));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = server.address();
      return typeof addr === 'object' && addr ? addr.port : 0;
    },
    async close(server) {
      if (closing) return;
      closing = true;
      for (const [t, wake] of timers) void (clearTimeout(t), wake());
      timers.clear();
      for (const w of waiters) w.reject(new Error(`fake ${name} closed`));
      waiters.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/**
 * Writes one chunk of a streamed answer and resolves once it is flushed, or at once when the client has gone away
 * (so a fake never waits on a dead socket).
 */
export function writeChunk(res: ServerResponse, data: string | Buffer): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => (res.off('close', done), resolve());
    res.once('close', done);
    res.write(data, done);
  });
}
