import { WSClient, type WsFrame } from '@wecom/aibot-node-sdk';
import type { Logger } from 'pino';
import type { Metrics } from '../../metrics.js';
import type { Store } from '../../store/types.js';
import { startBotWsLease, type BotWsLease } from './ws-lease.js';
import { createBotWsReplier, type BotWsReplier } from './ws-replier.js';
import { sdkLogger } from './ws-sdk-logger.js';

export type { BotWsReplier, BotWsStreamFrame } from './ws-replier.js';
export { BotWsReplyError } from './ws-replier.js';

/**
 * Long-connection mode of the WeCom smart bot (wecom-aibot-protocol.md §9): one WebSocket per bot, dialled by the
 * one process holding the bot's lease (ws-lease.ts), through Tencent's SDK (`@wecom/aibot-node-sdk` WSClient: it
 * subscribes, keeps the heartbeat, reconnects with back-off and queues the replies of one req_id one after another).
 * This module decides when a client exists: it opens one per lease tenure and closes it when the lease goes, when
 * WeCom refuses the credentials, or when another connection evicts ours. Times in milliseconds.
 */

/** One inbound frame WeCom pushed (`aibot_msg_callback` → `message`, `aibot_event_callback` → `event`). */
export interface BotWsCallback {
  botId: string;
  kind: 'message' | 'event';
  /** WeCom's req_id of the frame; every reply to it reuses it (the replier does) */
  reqId: string;
  /** the frame's body as WeCom sent it (msgid, aibotid, from, msgtype, … — §9.3; events: event.eventtype) */
  body: Record<string, unknown>;
  replier: BotWsReplier;
}

export interface BotConnectionsOptions {
  /** long-connection bots (BotID and the Secret of long-connection mode) */
  bots: Array<{ botId: string; secret: string }>;
  /** WECOM_BOT_WS_URL, e.g. `wss://openws.work.weixin.qq.com` */
  wsUrl: string;
  /** where the leases live: Redis shares them among processes (memory: this process only) */
  store: Store;
  /** unique per process; the lease keys' value */
  holderId: string;
  log: Logger;
  metrics: Metrics;
  /** lease TTL, default 15000 (ws-lease.ts) */
  leaseMs?: number;
  /**
   * Called for every message and event (not `disconnected_event`, handled here), synchronously from the socket's
   * handler: hand the work off and return. A throw is logged and swallowed.
   */
  onCallback(cb: BotWsCallback): void;
  /** rest after the first eviction by another connection (`disconnected_event`); doubled for each eviction in a
   *  row, up to {@link KICK_REST_MAX_MS}. Default 60000 */
  kickRestMs?: number;
  /** acquisition period bounds of a non-holder, default [2000, 3000] (ws-lease.ts) */
  acquireEveryMs?: readonly [min: number, max: number];
}

export interface BotConnections {
  /** Closes the sockets, then releases the leases held (the SIGTERM path); other processes take over within one
   *  acquisition period. */
  stop(): Promise<void>;
  /** whether this process holds the bot's connection and WeCom accepted its subscribe */
  isConnected(botId: string): boolean;
}

/** First rest after WeCom refused the credentials; doubled per refusal in a row up to {@link AUTH_REST_MAX_MS}. */
export const AUTH_REST_BASE_MS = 1_000;
export const AUTH_REST_MAX_MS = 30_000;
export const KICK_REST_BASE_MS = 60_000;
export const KICK_REST_MAX_MS = 15 * 60_000;
/** A connection that stayed up this long ends an eviction streak: the next eviction rests from the base again. */
export const KICK_STREAK_RESET_MS = 10 * 60_000;

const HINT = 'check the BotID and Secret of long-connection mode in the WeCom admin console';

interface BotState {
  botId: string;
  secret: string;
  log: Logger;
  lease: BotWsLease;
  /** the client of the current lease tenure, or null */
  client: WSClient | null;
  /** WeCom acked the current client's subscribe and its socket has not closed since */
  authenticated: boolean;
  authenticatedAt: number;
  authRefusals: number;
  kicks: number;
}

/**
 * Starts competing for every bot's lease and connects the bots whose lease this process wins.
 * Never throws; failures are logged and retried.
 */
export function startBotConnections(o: BotConnectionsOptions): BotConnections {
  const kickRestBase = o.kickRestMs ?? KICK_REST_BASE_MS;
  const baseLog = o.log.child({ part: 'bot-ws' });
  const bots = new Map<string, BotState>();
  let stopped = false;
  let downloader: WSClient | null = null;
  const getDownloader = (): WSClient =>
    (downloader ??= new WSClient({ botId: 'download-only', secret: '', logger: sdkLogger(baseLog, '') }));

  const setConnected = (bot: BotState, up: boolean): void => {
    bot.authenticated = up;
    o.metrics.botWsConnected.set({ bot: bot.botId }, up ? 1 : 0);
  };

  /** Forgets the bot's client and closes its socket; nothing it emits afterwards is acted on. */
  const closeClient = (bot: BotState): void => {
    const client = bot.client;
    bot.client = null;
    setConnected(bot, false);
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => undefined);
    try {
      client.disconnect();
    } catch (err) {
      bot.log.warn({ err }, 'bot ws: closing the client failed');
    }
  };

  const deliver = (bot: BotState, kind: 'message' | 'event', frame: WsFrame): void => {
    const reqId = frame.headers?.req_id;
    const body = frame.body as unknown;
    if (typeof reqId !== 'string' || !reqId || !body || typeof body !== 'object') return;
    const replier = createBotWsReplier(reqId, () => bot.client, getDownloader);
    try {
      o.onCallback({ botId: bot.botId, kind, reqId, body: body as Record<string, unknown>, replier });
    } catch (err) {
      bot.log.error({ err, reqId }, 'bot ws: onCallback threw');
    }
  };

  const onAuthRefused = (bot: BotState, errcode: number | undefined, errmsg: string): void => {
    bot.authRefusals += 1;
    const restMs = Math.min(AUTH_REST_BASE_MS * 2 ** (bot.authRefusals - 1), AUTH_REST_MAX_MS);
    bot.log.error(
      { errcode, errmsg: scrub(errmsg, bot.secret), attempt: bot.authRefusals, retryInMs: restMs },
      `WeCom refused the smart bot's long-connection subscribe (errcode ${errcode ?? 'unknown'}): ${HINT}`,
    );
    closeClient(bot);
    // Cluster-wide pause: a sibling with the same credentials would only be refused too.
    void bot.lease.coolDown(restMs);
  };

  const onKicked = (bot: BotState): void => {
    if (bot.authenticated && Date.now() - bot.authenticatedAt >= KICK_STREAK_RESET_MS) bot.kicks = 0;
    bot.kicks += 1;
    const restMs = Math.min(kickRestBase * 2 ** (bot.kicks - 1), KICK_REST_MAX_MS);
    bot.log.warn(
      { restMs, kicks: bot.kicks },
      'bot ws: evicted by another connection with this BotID (disconnected_event); no process of this bridge competes for it before the rest ends',
    );
    closeClient(bot);
    // Not a plain release: a sibling would take the lease within seconds and evict the other party in turn.
    void bot.lease.coolDown(restMs);
  };

  const openClient = (bot: BotState): void => {
    if (stopped) return;
    closeClient(bot);
    const client = new WSClient({
      botId: bot.botId,
      secret: bot.secret,
      wsUrl: o.wsUrl,
      maxReconnectAttempts: -1, // a lost socket is retried (1 s … 30 s) for as long as the lease is held
      maxAuthFailureAttempts: -1, // refusals are handled below (the client is closed at the first one)
      logger: sdkLogger(bot.log, bot.secret),
    });
    bot.client = client;
    const current = (): boolean => bot.client === client;
    client.on('authenticated', () => {
      if (!current()) return;
      bot.authRefusals = 0;
      bot.authenticatedAt = Date.now();
      setConnected(bot, true);
      bot.log.info('bot ws: connected and subscribed');
    });
    client.on('disconnected', (reason) => {
      if (!current()) return;
      if (bot.authenticated) bot.log.warn({ reason }, 'bot ws: connection lost; the SDK reconnects');
      setConnected(bot, false);
    });
    client.on('error', (err) => {
      if (!current()) return;
      const refused = authRefusal(err);
      if (refused) onAuthRefused(bot, refused.errcode, refused.errmsg);
      else bot.log.debug({ error: scrub(err.message, bot.secret) }, 'bot ws: client error');
    });
    client.on('message', (frame) => {
      if (current()) deliver(bot, 'message', frame);
    });
    client.on('event', (frame) => {
      if (!current()) return;
      const eventtype = (frame.body as { event?: { eventtype?: unknown } } | undefined)?.event?.eventtype;
      if (eventtype === 'disconnected_event') onKicked(bot);
      else deliver(bot, 'event', frame);
    });
    client.connect();
  };

  for (const { botId, secret } of o.bots) {
    const log = baseLog.child({ bot: botId });
    o.metrics.botWsConnected.set({ bot: botId }, 0);
    const bot: BotState = {
      botId,
      secret,
      log,
      client: null,
      authenticated: false,
      authenticatedAt: 0,
      authRefusals: 0,
      kicks: 0,
      // The lease calls back from a timer, never synchronously, so `bot` is initialised by then.
      lease: startBotWsLease({
        store: o.store,
        botId,
        holderId: o.holderId,
        log,
        leaseMs: o.leaseMs,
        acquireEveryMs: o.acquireEveryMs,
        onAcquired: () => openClient(bot),
        onLost: () => closeClient(bot),
      }),
    };
    bots.set(botId, bot);
  }

  return {
    stop: async () => {
      stopped = true;
      await Promise.all(
        [...bots.values()].map(async (bot) => {
          const leaseStopped = bot.lease.stop(); // no new tenure from here on; the release waits for the socket
          closeClient(bot);
          await leaseStopped;
        }),
      );
    },
    isConnected: (botId) => {
      const bot = bots.get(botId);
      return !!bot && bot.authenticated && bot.client !== null && bot.client.isConnected;
    },
  };
}

/** The SDK reports a refused subscribe only as `Error("Authentication failed: <errmsg> (code: <errcode>)")`. */
function authRefusal(err: Error): { errcode: number | undefined; errmsg: string } | null {
  const m = /^Authentication failed: (.*?)(?: \(code: (-?\d+)\))?$/s.exec(err.message);
  if (!m) return null;
  return { errcode: m[2] === undefined ? undefined : Number(m[2]), errmsg: m[1] ?? '' };
}

function scrub(text: string, secret: string): string {
  return secret ? text.split(secret).join('[redacted]') : text;
}
