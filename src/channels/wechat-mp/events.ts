import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { OA_TEXT_MAX_BYTES, splitByBytes, utf8Bytes } from '../../format/split.js';
import type { Metrics } from '../../metrics.js';
import { customerKey, keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { xmlText } from '../../xml/parse.js';
import type { MpEvent } from './inbound.js';

export interface MpEventDeps {
  store: Store;
  appId: string;
  /** WELCOME_MESSAGE (null: none) */
  welcome: string | null;
  /** WECHAT_MP_CLICK_REPLIES */
  clickReplies: Record<string, string>;
  /** drops what the bridge keeps about a customer (conversation, pending answer) */
  forgetCustomer(customer: string): Promise<void>;
  metrics: Metrics;
  log: Logger;
}

/** WeChat retries an event for ~15 s; ten minutes of memory is plenty and keeps the keys few. */
const EVENT_DEDUP_TTL_MS = 10 * 60_000;
const LOCATION_TTL_MS = 7 * 24 * 3600_000;

/**
 * Handles an event push at once (no job, no LLM): `subscribe` → WELCOME_MESSAGE, `CLICK` → its configured
 * text, both as the passive reply (no customer-service quota needed, works on every account type);
 * `unsubscribe` → the customer's data is dropped (Tencent asks for it); `LOCATION` → stored, not answered;
 * `SCAN`, `VIEW` and other menu events → logged and ignored (docs/protocols.md OA §4).
 * An event seen again (same FromUserName, CreateTime, Event and EventKey) does nothing again and gets the same
 * answer: WeChat re-delivers only when it did not get the first one. The record is written after the work, so a
 * store failure midway (503, WeChat retries) repeats the work instead of skipping it; the work is idempotent.
 * @returns the text of the passive reply, or null for `success`
 * @throws when the store fails (the route answers 503 and WeChat retries)
 */
export async function handleMpEvent(d: MpEventDeps, e: MpEvent): Promise<string | null> {
  const digest = createHash('sha256')
    .update([e.openid, e.createTime, e.event, e.eventKey].join('\n'))
    .digest('base64url')
    .slice(0, 22);
  const key = keys.mpEvent(d.appId, digest);
  const seen = await d.store.get(key);
  if (seen !== null) return again(d, e, seen);
  const reply = await act(d, e);
  if (!(await d.store.setIfAbsent(key, reply ?? '', EVENT_DEDUP_TTL_MS))) return again(d, e, (await d.store.get(key)) ?? '');
  if (reply !== null) d.metrics.replies.inc({ channel: 'mp', kind: e.event === 'subscribe' ? 'welcome' : 'command' });
  return reply;
}

function again(d: MpEventDeps, e: MpEvent, stored: string): string | null {
  d.metrics.dedupHits.inc({ channel: 'mp' });
  d.log.info({ event: e.event }, 'event delivered again; same answer, nothing done twice');
  return stored === '' ? null : stored;
}

async function act(d: MpEventDeps, e: MpEvent): Promise<string | null> {
  const customer = customerKey('mp', d.appId, e.openid);
  switch (e.event) {
    case 'subscribe': {
      const scene = e.eventKey.startsWith('qrscene_') ? e.eventKey.slice('qrscene_'.length) : null;
      d.log.info({ event: e.event, scene }, 'new follower');
      return fit(d.welcome);
    }
    case 'unsubscribe':
      await Promise.all([d.forgetCustomer(customer), d.store.del(keys.mpLocation(customer))]);
      d.log.info({ event: e.event }, 'follower left; their conversation was dropped');
      return null;
    case 'CLICK': {
      const text = d.clickReplies[e.eventKey] ?? null;
      d.log.info({ event: e.event, eventKey: e.eventKey.slice(0, 64), answered: text !== null }, 'menu click');
      return fit(text);
    }
    case 'LOCATION': {
      const f = (n: string) => xmlText(e.raw, n) ?? '';
      const location = { latitude: f('Latitude'), longitude: f('Longitude'), precision: f('Precision'), at: e.createTime };
      await d.store.set(keys.mpLocation(customer), JSON.stringify(location), LOCATION_TTL_MS);
      return null;
    }
    case 'SCAN':
    case 'VIEW':
      d.log.info({ event: e.event, eventKey: e.eventKey.slice(0, 200) }, 'event noted');
      return null;
    default:
      d.log.info({ event: e.event.slice(0, 64) }, 'event not handled; ignored');
      return null;
  }
}

/** A passive reply is one message: a configured text longer than WeChat takes is cut at a character boundary. */
function fit(text: string | null): string | null {
  if (!text) return null;
  return utf8Bytes(text) <= OA_TEXT_MAX_BYTES ? text : (splitByBytes(text, OA_TEXT_MAX_BYTES)[0] ?? null);
}
