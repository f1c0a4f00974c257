/**
 * A fake WeCom smart-bot long-connection endpoint (wecom-aibot-protocol.md §9) on ws://127.0.0.1:<random port>,
 * speaking the frames of `@wecom/aibot-node-sdk` 1.0.7: JSON `{cmd, headers: {req_id}, body}` in, acks
 * `{headers: {req_id}, errcode, errmsg[, body]}` out. Rules it enforces like WeCom does:
 * - `aibot_subscribe {bot_id, secret}`: ack 0 for a configured pair, else 853000 (then closes the socket);
 * - one connection per bot: a newer accepted subscribe sends the older connection an `aibot_event_callback` with
 *   `event.eventtype: 'disconnected_event'` and closes it;
 * - replies (`aibot_respond_msg`, `aibot_respond_welcome_msg`, `aibot_respond_update_msg`) must reuse a req_id pushed
 *   to that bot (else 846605), and no stream frame may follow one with `finish: true` on the same req_id (846608,
 *   recorded as a violation).
 * Every frame received is recorded. No module-level state; times in milliseconds.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** One frame a client sent, with the ack the fake gave it. */
export interface FakeBotWsFrame {
  /** the connection's number, 1, 2, … in accept order */
  conn: number;
  /** the bot the connection is subscribed as (for `aibot_subscribe`: the bot_id it named) */
  bot: string | null;
  cmd: string;
  reqId: string;
  body: Record<string, unknown> | undefined;
  /** errcode of the fake's ack */
  errcode: number;
  /** Date.now() on receipt */
  at: number;
}

export interface FakeBotWsViolation {
  conn: number;
  bot: string | null;
  reqId: string;
  what: string;
}

export interface FakeWecomBotWs {
  /** ws://127.0.0.1:<port> */
  readonly url: string;
  readonly frames: readonly FakeBotWsFrame[];
  readonly violations: readonly FakeBotWsViolation[];
  /** Sets (or fixes) the secret the fake accepts for `botId`. */
  setSecret(botId: string, secret: string): void;
  /** `aibot_subscribe` frames naming `botId`, refused ones included */
  subscribes(botId: string): number;
  /** subscribes of `botId` acked with 0 */
  accepted(botId: string): number;
  /** older connections of `botId` the fake evicted because a newer one subscribed (third-party kicks not counted) */
  evictions(botId: string): number;
  /** whether an accepted connection of `botId` is open */
  isConnected(botId: string): boolean;
  /** accepted and still open connections of `botId` (the eviction rule keeps it ≤ 1) */
  openConnections(botId: string): number;
  /** Date.now() when the current connection of `botId` was accepted, or null */
  connectedSince(botId: string): number | null;
  /**
   * Pushes an `aibot_msg_callback` to the bot's current connection. `body` is merged over defaults (msgid, aibotid,
   * chattype single, from.userid `user1`, msgtype text). @returns the req_id @throws when the bot has no connection
   */
  pushMessage(botId: string, body?: Record<string, unknown>): string;
  /** Pushes an `aibot_event_callback` with `event.eventtype`. @returns the req_id @throws as pushMessage */
  pushEvent(botId: string, eventtype: string, extra?: Record<string, unknown>): string;
  /** A third party subscribes as `botId`: the current connection gets `disconnected_event` and is closed. */
  kick(botId: string): void;
  /** Drops the bot's current connection abruptly (TCP destroyed, no close frame). */
  drop(botId: string): void;
  /** Resolves with the first `count` recorded frames matching `pred` (already recorded ones count). @throws after
   *  `timeoutMs` (default 5000) or on close */
  waitForFrames(pred: (f: FakeBotWsFrame) => boolean, count?: number, timeoutMs?: number): Promise<FakeBotWsFrame[]>;
  close(): Promise<void>;
}

interface Conn {
  id: number;
  ws: WebSocket;
  bot: string | null;
  accepted: boolean;
  acceptedAt: number;
  open: boolean;
}

/** The ack of a bad pair (reported by other implementations; unconfirmed by Tencent). */
export const FAKE_AUTH_REFUSED = { errcode: 853000, errmsg: 'invalid bot_id or secret' } as const;

/** Starts the fake. @param o.bots BotID → accepted secret */
export async function startFakeWecomBotWs(o: { bots: Record<string, string> }): Promise<FakeWecomBotWs> {
  const secrets = new Map(Object.entries(o.bots));
  const frames: FakeBotWsFrame[] = [];
  const violations: FakeBotWsViolation[] = [];
  const conns = new Set<Conn>();
  /** the bot's current holder: a connection, or 'third-party' after a kick */
  const current = new Map<string, Conn | 'third-party'>();
  const pushed = new Map<string, string>(); // req_id → bot
  const finished = new Set<string>(); // req_ids whose stream ended
  const evicted = new Map<string, number>();
  const waiters = new Set<{ check: () => void; fail: (e: Error) => void }>();
  let nextConn = 1;
  let closed = false;

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;

  const send = (c: Conn, frame: unknown): void => {
    if (c.open) c.ws.send(JSON.stringify(frame));
  };
  const ack = (c: Conn, reqId: string, errcode: number, errmsg = errcode === 0 ? 'ok' : 'error', body?: unknown): void =>
    send(c, body === undefined ? { headers: { req_id: reqId }, errcode, errmsg } : { headers: { req_id: reqId }, errcode, errmsg, body });
  const reqIdOf = (prefix: string): string => `${prefix}_${Date.now()}_${randomBytes(4).toString('hex')}`;

  const evict = (c: Conn): void => {
    send(c, {
      cmd: 'aibot_event_callback',
      headers: { req_id: reqIdOf('evt') },
      body: {
        msgid: randomBytes(8).toString('hex'),
        create_time: Math.floor(Date.now() / 1000),
        aibotid: c.bot,
        msgtype: 'event',
        event: { eventtype: 'disconnected_event' },
      },
    });
    c.accepted = false;
    // WeCom closes the older connection right after the event.
    setTimeout(() => c.ws.close(1000, 'replaced by a newer connection'), 20);
  };

  const record = (f: FakeBotWsFrame): void => {
    frames.push(f);
    for (const w of [...waiters]) w.check();
  };

  const handle = (c: Conn, raw: string): void => {
    let frame: { cmd?: unknown; headers?: { req_id?: unknown }; body?: unknown };
    try {
      frame = JSON.parse(raw) as typeof frame;
    } catch {
      violations.push({ conn: c.id, bot: c.bot, reqId: '', what: 'not JSON' });
      return;
    }
    const cmd = typeof frame.cmd === 'string' ? frame.cmd : '';
    const reqId = typeof frame.headers?.req_id === 'string' ? frame.headers.req_id : '';
    const body = frame.body && typeof frame.body === 'object' ? (frame.body as Record<string, unknown>) : undefined;
    const at = Date.now();
    const done = (errcode: number, errmsg?: string, ackBody?: unknown, bot = c.bot): void => {
      ack(c, reqId, errcode, errmsg, ackBody);
      record({ conn: c.id, bot, cmd, reqId, body, errcode, at });
    };

    if (cmd === 'aibot_subscribe') {
      const bot = typeof body?.bot_id === 'string' ? body.bot_id : '';
      const ok = secrets.has(bot) && secrets.get(bot) === body?.secret;
      if (!ok) {
        done(FAKE_AUTH_REFUSED.errcode, FAKE_AUTH_REFUSED.errmsg, undefined, bot);
        setTimeout(() => c.ws.close(), 100);
        return;
      }
      const older = current.get(bot);
      if (older && older !== 'third-party' && older !== c && older.open) {
        evicted.set(bot, (evicted.get(bot) ?? 0) + 1);
        evict(older);
      }
      c.bot = bot;
      c.accepted = true;
      c.acceptedAt = at;
      current.set(bot, c);
      done(0, 'ok', undefined, bot);
      return;
    }
    if (cmd === 'ping') return done(0);
    if (!c.accepted) {
      violations.push({ conn: c.id, bot: c.bot, reqId, what: `${cmd || 'frame'} before an accepted subscribe` });
      return done(40001, 'not subscribed');
    }
    switch (cmd) {
      case 'aibot_respond_msg':
      case 'aibot_respond_welcome_msg':
      case 'aibot_respond_update_msg': {
        if (pushed.get(reqId) !== c.bot) return done(846605, 'invalid req_id');
        if (cmd === 'aibot_respond_msg' && body?.msgtype === 'stream') {
          if (finished.has(reqId)) {
            violations.push({ conn: c.id, bot: c.bot, reqId, what: 'stream frame after finish' });
            return done(846608, 'stream message update expired');
          }
          if ((body.stream as { finish?: unknown } | undefined)?.finish === true) finished.add(reqId);
        }
        return done(0);
      }
      case 'aibot_send_msg':
        return done(0);
      case 'aibot_upload_media_init':
        return done(0, 'ok', { upload_id: `up-${randomBytes(4).toString('hex')}` });
      case 'aibot_upload_media_chunk':
        return done(0);
      case 'aibot_upload_media_finish':
        return done(0, 'ok', { type: 'image', media_id: `media-${randomBytes(6).toString('hex')}`, created_at: String(Math.floor(at / 1000)) });
      default:
        violations.push({ conn: c.id, bot: c.bot, reqId, what: `unknown cmd ${cmd}` });
        return done(40058, 'unknown cmd');
    }
  };

  wss.on('connection', (ws) => {
    const c: Conn = { id: nextConn++, ws, bot: null, accepted: false, acceptedAt: 0, open: true };
    conns.add(c);
    ws.on('message', (data) => handle(c, String(data)));
    ws.on('error', () => undefined);
    ws.on('close', () => {
      c.open = false;
      c.accepted = false;
      conns.delete(c);
    });
  });

  const live = (botId: string): Conn => {
    const c = current.get(botId);
    if (!c || c === 'third-party' || !c.open || !c.accepted) throw new Error(`fake wecom bot ws: ${botId} has no connection`);
    return c;
  };
  const push = (botId: string, cmd: string, body: Record<string, unknown>): string => {
    const c = live(botId);
    const reqId = reqIdOf(cmd);
    pushed.set(reqId, botId);
    send(c, { cmd, headers: { req_id: reqId }, body });
    return reqId;
  };
  const base = (botId: string): Record<string, unknown> => ({
    msgid: randomBytes(8).toString('hex'),
    create_time: Math.floor(Date.now() / 1000),
    aibotid: botId,
    chattype: 'single',
    from: { userid: 'user1' },
  });
  const openAccepted = (botId: string): Conn[] => [...conns].filter((c) => c.bot === botId && c.accepted && c.open);

  return {
    url,
    frames,
    violations,
    setSecret: (botId, secret) => void secrets.set(botId, secret),
    subscribes: (botId) => frames.filter((f) => f.cmd === 'aibot_subscribe' && f.bot === botId).length,
    accepted: (botId) => frames.filter((f) => f.cmd === 'aibot_subscribe' && f.bot === botId && f.errcode === 0).length,
    evictions: (botId) => evicted.get(botId) ?? 0,
    isConnected: (botId) => openAccepted(botId).length > 0,
    openConnections: (botId) => openAccepted(botId).length,
    connectedSince: (botId) => {
      const c = current.get(botId);
      return c && c !== 'third-party' && c.open && c.accepted ? c.acceptedAt : null;
    },
    pushMessage: (botId, body = {}) => push(botId, 'aibot_msg_callback', { ...base(botId), msgtype: 'text', text: { content: 'hello' }, ...body }),
    pushEvent: (botId, eventtype, extra = {}) =>
      push(botId, 'aibot_event_callback', { ...base(botId), msgtype: 'event', event: { eventtype }, ...extra }),
    kick: (botId) => {
      const c = current.get(botId);
      if (c && c !== 'third-party' && c.open) evict(c);
      current.set(botId, 'third-party');
    },
    drop: (botId) => {
      const c = live(botId);
      c.accepted = false;
      c.ws.terminate();
    },
    waitForFrames: (pred, count = 1, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const w = {
          check: () => {
            const got = frames.filter(pred);
            if (got.length < count) return;
            finish();
            resolve(got.slice(0, count));
          },
          fail: (e: Error) => {
            finish();
            reject(e);
          },
        };
        const timer = setTimeout(() => w.fail(new Error(`fake wecom bot ws: ${frames.filter(pred).length}/${count} frames after ${timeoutMs} ms`)), timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(w);
        };
        waiters.add(w);
        w.check();
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const w of [...waiters]) w.fail(new Error('fake wecom bot ws closed'));
      for (const c of conns) c.ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
