import { inboundSummary } from '../../pipeline/inbound-summary.js';
import type { JobPayload } from '../../pipeline/jobs.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { KfConfig } from '../../config.js';
import { WechatApiError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import type { JobQueue } from '../../pipeline/job-queue.js';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import type { WechatEnvelope } from '../../wechat-api/http.js';
import type { ApiClient } from '../../wechat-api/api-client.js';
import { applyKfEvent } from './events.js';
import { selectItem, type KfEvent, type SyncItem } from './sync-select.js';

/** The account key used when a callback carries no OpenKfId (old setups): pull every account at once. */
export const ALL_ACCOUNTS = '_all';
/** sync_msg's maximum page size (kf §2.2). */
const PAGE_LIMIT = 1000;
/** A guard against a platform that keeps answering has_more with the same cursor. */
const MAX_PAGES_PER_PULL = 10_000;
/** How long the newest callback Token is worth keeping: WeCom says 10 minutes. */
export const SYNC_TOKEN_TTL_MS = 10 * 60_000;
const EXPIRED_SYNC_TOKEN = 95007;

/** Events are worth a line each (an operator wants to see sessions open and sends fail); old messages are not. */
const LOG_LEVEL_BY_REASON: Record<string, 'warn' | 'info'> = { malformed: 'warn', event: 'info', welcome_code_expired: 'info' };

interface SyncResponse extends WechatEnvelope {
  next_cursor?: string;
  has_more?: number;
  msg_list?: SyncItem[];
}

export interface SyncDeps {
  api: ApiClient;
  store: Store;
  config: KfConfig;
  log: Logger;
  metrics: Metrics;
  welcomeEnabled: boolean;
  /** where a page's messages are handed off (durable once it resolves; the cursor is saved right after) */
  jobs: Pick<JobQueue, 'handOff'>;
  /** false in a web-only process (ROLE=web): callbacks only mark the account; worker processes pull */
  pullHere?: boolean;
  /**
   * Without `pullHere` (ROLE=web): hands the pull to the workers (a kf-pull BullMQ job) after the mark is written.
   * @throws when Redis fails (the callback answers 503)
   */
  handOffPull?: (account: string) => Promise<void>;
  /** the message log's rows: a `pending` row per new customer message (default: none) */
  recorder?: MessageRecorder;
}

/**
 * Pulls one kf account to the end (docs/protocols.md kf §2.2–2.3): from the stored cursor, page by page while
 * `has_more` is 1 (an empty page is not the end), handing every selected message off durably before the
 * cursor advances, so a crash re-reads the page and the msgid dedup absorbs it. The caller holds the account's
 * pull lock. With no stored cursor (cold start) only messages younger than KF_COLD_START_MAX_AGE_S are answered,
 * until a page says `has_more` 0 — also across pulls, when a cold start is cut short after saving a cursor.
 * @param signal aborted when the lock is lost or on shutdown: the pull stops between pages
 * @returns how many new jobs were handed off
 * @throws WechatApiError when sync_msg keeps failing, Error when WeCom says has_more without a cursor or the page
 *   guard trips; the pull-wanted mark then stays and a later sweep retries
 */
export async function pullAccount(d: SyncDeps, account: string, signal: AbortSignal): Promise<number> {
  let cursor = await d.store.get(keys.kfCursor(account));
  const coldKey = keys.kfColdStart(account);
  const coldStart = cursor === null || (await d.store.get(coldKey)) !== null;
  if (cursor === null) await d.store.set(coldKey, '1');
  let syncToken = await d.store.get(keys.kfSyncToken(account));
  let handedOff = 0;
  for (let page = 0; page < MAX_PAGES_PER_PULL && !signal.aborted; page++) {
    const body: Record<string, unknown> = { limit: PAGE_LIMIT };
    if (cursor) body.cursor = cursor;
    if (account !== ALL_ACCOUNTS) body.open_kfid = account;
    let res: SyncResponse;
    try {
      res = await syncPage(d.api, { ...body, ...(syncToken ? { token: syncToken } : {}) }, signal);
    } catch (e) {
      if (!(syncToken && e instanceof WechatApiError && e.errcode === EXPIRED_SYNC_TOKEN)) throw e;
      // The callback Token lives 10 minutes; without it the pull is rate-limited harder but still works.
      d.log.info({ open_kfid: account }, 'sync Token expired; pulling without it');
      await d.store.delIfEquals(keys.kfSyncToken(account), syncToken);
      syncToken = null;
      res = await syncPage(d.api, body, signal);
    }
    handedOff += await handOffPage(d, res.msg_list ?? [], coldStart, account);
    if (res.next_cursor) {
      cursor = res.next_cursor;
      await d.store.set(keys.kfCursor(account), cursor);
    }
    if (res.has_more !== 1) {
      if (coldStart) await d.store.del(coldKey);
      return handedOff;
    }
    if (!res.next_cursor) throw new Error('sync_msg said has_more without a next_cursor');
  }
  if (signal.aborted) return handedOff;
  throw new Error(`sync_msg still had more after ${MAX_PAGES_PER_PULL} pages`);
}

async function syncPage(api: ApiClient, body: Record<string, unknown>, signal: AbortSignal): Promise<SyncResponse> {
  return pRetry(() => api.post<SyncResponse>('kf/sync_msg', '/cgi-bin/kf/sync_msg', body, signal), {
    retries: 3,
    minTimeout: 300,
    factor: 3,
    signal,
    shouldRetry: ({ error }) => error instanceof WechatApiError && error.retryable,
  });
}

async function handOffPage(d: SyncDeps, items: SyncItem[], coldStart: boolean, account: string): Promise<number> {
  const ctx = {
    nowS: Math.floor(Date.now() / 1000),
    coldStart,
    coldStartMaxAgeS: d.config.coldStartMaxAgeS,
    maxMessageAgeS: d.config.maxMessageAgeS,
    welcomeEnabled: d.welcomeEnabled,
  };
  const jobs: { id: string; payload: string }[] = [];
  const events: KfEvent[] = [];
  for (const item of items) {
    const s = selectItem(item, ctx);
    if (s.action === 'job') jobs.push({ id: s.id, payload: JSON.stringify(s.payload) });
    else if (s.action === 'event') events.push(s.event);
    else d.log[LOG_LEVEL_BY_REASON[s.reason] ?? 'debug']({ open_kfid: account, msgid: s.msgid, reason: s.reason, detail: s.detail }, 'kf item not answered');
  }
  // Before the jobs can run (a queue starts them at once): a hand-over or a recall in this page must be known when
  // their replies are planned. In log order, so the newest state of a conversation wins; re-applied harmlessly when
  // a crash makes the page be read again.
  for (const ev of events) await applyKfEvent(d, ev);
  const created = await d.jobs.handOff(jobs);
  if (d.recorder) recordInbound(d.recorder, jobs.filter((_, i) => created[i]));
  const fresh = jobs.filter((_, i) => created[i]).map((j) => j.id);
  const dupes = jobs.length - fresh.length;
  if (dupes > 0) d.metrics.dedupHits.inc({ channel: 'kf' }, dupes);
  if (items.length > 0) d.log.info({ open_kfid: account, items: items.length, handedOff: fresh.length, dupes, coldStart }, 'kf page pulled');
  return fresh.length;
}

/** `pending` rows for the customer messages of a page that were handed off now (not the welcome jobs). */
function recordInbound(recorder: MessageRecorder, jobs: { payload: string }[]): void {
  for (const j of jobs) {
    const p = JSON.parse(j.payload) as JobPayload;
    const summary = inboundSummary(p);
    if (!summary || p.channel !== 'kf') continue;
    recorder.inbound({ channel: 'kf', account: p.open_kfid, externalId: p.external_userid, msgid: p.msgid, ...summary, atMs: p.send_time * 1000 });
  }
}
