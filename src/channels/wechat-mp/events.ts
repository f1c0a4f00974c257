import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
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
 * `SCAN`, `VIEW` and other menu events → logged and ignored (wechat-mp-protocol.md §4).
 * An event seen again (same FromUserName, CreateTime, Event and EventKey) changes nothing and gets `success`.
 * @returns the text of the passive reply, or null for `success`
 * @throws when the store fails (the route answers 503 and WeChat retries)
 */
export async function handleMpEvent(d: MpEventDeps, e: MpEvent): Promise<string | null> {
  const digest = createHash('sha256')
    .update([e.openid, e.createTime, e.event, e.eventKey].join('\n'))
    .digest('base64url')
    .slice(0, 22);
  if (!(await d.store.setIfAbsent(keys.mpEvent(d.appId, digest), '1', EVENT_DEDUP_TTL_MS))) {
    d.metrics.dedupHits.inc({ channel: 'mp' });
    d.log.info({ event: e.event }, 'event already handled; ignored');
    return null;
  }
  const customer = customerKey('mp', d.appId, e.openid);
  switch (e.event) {
    case 'subscribe': {
      const scene = e.eventKey.startsWith('qrscene_') ? e.eventKey.slice('qrscene_'.length) : null;
      d.log.info({ event: e.event, scene }, 'new follower');
      if (d.welcome) d.metrics.replies.inc({ channel: 'mp', kind: 'welcome' });
      return d.welcome;
    }
    case 'unsubscribe':
      await Promise.all([d.forgetCustomer(customer), d.store.del(keys.mpLocation(customer))]);
      d.log.info({ event: e.event }, 'follower left; their conversation was dropped');
      return null;
    case 'CLICK': {
      const text = d.clickReplies[e.eventKey] ?? null;
      d.log.info({ event: e.event, eventKey: e.eventKey, answered: text !== null }, 'menu click');
      if (text) d.metrics.replies.inc({ channel: 'mp', kind: 'command' });
      return text;
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
