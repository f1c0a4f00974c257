import type { Logger } from 'pino';
import { WechatApiError } from '../../errors.js';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import type { ApiClient } from '../../wechat-api/api-client.js';
import type { WechatEnvelope } from '../../wechat-api/http.js';

/**
 * What the bridge knows of who holds a kf conversation (docs/protocols.md kf §4): 0 new, 1 the bot, 2 the queue,
 * 3 a human servicer, 4 ended. Learned from `session_status_change` events, from our own hand-offs and from
 * `service_state/get`; kept 48 h (a conversation's lifetime).
 */
export interface ServiceStateRecord {
  state: number;
  source: 'event' | 'handoff' | 'get';
  /** epoch ms */
  at: number;
}

/** While a conversation is in one of these states, `send_msg` answers 95018 and the bot must stay silent. */
export const HUMAN_STATES: ReadonlySet<number> = new Set([2, 3]);
const RECORD_TTL_MS = 48 * 3600_000;

/**
 * Stores what the bridge learned of a conversation's state (docs/protocols.md kf §4.1: 0–4), for 48 h.
 * @throws when the store does not answer
 */
export async function recordServiceState(
  store: Store,
  openKfid: string,
  user: string,
  state: number,
  source: ServiceStateRecord['source'],
): Promise<void> {
  const record: ServiceStateRecord = { state, source, at: Date.now() };
  await store.set(keys.kfServiceState(openKfid, user), JSON.stringify(record), RECORD_TTL_MS);
}

/** The stored record of a conversation's state, or null (none, expired, or unreadable). @throws when the store does not answer */
export async function readServiceState(store: Store, openKfid: string, user: string): Promise<ServiceStateRecord | null> {
  const raw = await store.get(keys.kfServiceState(openKfid, user));
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as ServiceStateRecord;
    return typeof v.state === 'number' ? v : null;
  } catch {
    return null;
  }
}

export interface ServiceStateDeps {
  api: ApiClient;
  store: Store;
  log: Logger;
}

/**
 * Asks WeCom (`POST /cgi-bin/kf/service_state/get`, kf §4.2) and records the answer.
 * @returns the state, or null when the call failed ("unknown": docs/configuration.md says answer then)
 */
export async function fetchServiceState(d: ServiceStateDeps, openKfid: string, user: string, signal: AbortSignal): Promise<number | null> {
  try {
    const res = await d.api.post<WechatEnvelope & { service_state?: number }>(
      'kf/service_state/get',
      '/cgi-bin/kf/service_state/get',
      { open_kfid: openKfid, external_userid: user },
      signal,
    );
    const state = Number(res.service_state);
    if (!Number.isInteger(state)) return null;
    await recordServiceState(d.store, openKfid, user, state, 'get');
    return state;
  } catch (e) {
    if (signal.aborted) throw e;
    d.log.warn({ err: describe(e) }, 'service_state/get failed; answering as if the bot holds the conversation');
    return null;
  }
}

/**
 * Whether a human (or the queue) holds the conversation, so the bot must neither answer nor ask the LLM
 * (docs/configuration.md "Hand-off"). Uses the stored record; only without one does it call `service_state/get`, and an
 * error there means "unknown, answer".
 */
export async function humanHolds(d: ServiceStateDeps, openKfid: string, user: string, signal: AbortSignal): Promise<boolean> {
  const known = await readServiceState(d.store, openKfid, user);
  const state = known ? known.state : await fetchServiceState(d, openKfid, user, signal);
  return state !== null && HUMAN_STATES.has(state);
}

/**
 * Moves a conversation to the queue (2) or a named servicer (3) with `POST /cgi-bin/kf/service_state/trans`
 * (kf §4.2) and records it.
 * @returns the `msg_code` for `send_msg_on_event` (WeCom returns one the first time a conversation moves to 2 or 3),
 *   or null
 * @throws WechatApiError when WeCom refuses the move (e.g. the servicer is not receiving) or keeps failing
 */
export async function transferToHuman(
  d: ServiceStateDeps,
  target: { open_kfid: string; external_userid: string; service_state: 2 | 3; servicer_userid: string | null },
  signal: AbortSignal,
): Promise<string | null> {
  const body: Record<string, unknown> = {
    open_kfid: target.open_kfid,
    external_userid: target.external_userid,
    service_state: target.service_state,
  };
  if (target.service_state === 3 && target.servicer_userid) body.servicer_userid = target.servicer_userid;
  const res = await d.api.post<WechatEnvelope & { msg_code?: string }>('kf/service_state/trans', '/cgi-bin/kf/service_state/trans', body, signal);
  await recordServiceState(d.store, target.open_kfid, target.external_userid, target.service_state, 'handoff');
  return typeof res.msg_code === 'string' && res.msg_code !== '' ? res.msg_code : null;
}

function describe(e: unknown): Record<string, unknown> {
  if (e instanceof WechatApiError) return { api: e.api, errcode: e.errcode, message: e.message };
  return { message: e instanceof Error ? e.message : String(e) };
}
