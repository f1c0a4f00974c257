import type { Logger } from 'pino';
import type { Metrics } from '../../metrics.js';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { replyTag, replyTagOf } from './send.js';
import { recordServiceState } from './service-state.js';
import type { KfEvent } from './sync-select.js';

/** As long as WeCom lets a reply go out (48 h); a cancellation need not outlive it. */
const CANCEL_TTL_MS = 48 * 3600_000;

/** session_status_change `change_type` → the conversation's new service_state (docs/protocols.md kf §2.5, §4.1). */
const STATE_AFTER_CHANGE: Record<number, number> = { 1: 3, 2: 3, 3: 4, 4: 3 };

/**
 * Applies one kf event pulled from sync_msg (docs/protocols.md kf §2.5). Idempotent: a page re-read after a crash
 * applies the same writes again.
 * - `session_status_change`: records who holds the conversation (1 taken from the queue, 2 transferred, 4 reopened →
 *   a human, 3 ended → the bot answers again);
 * - `user_recall_msg`: cancels the reply to the recalled message (parts not yet sent are not sent);
 * - `msg_send_fail`: counts and logs it, and cancels the rest of that reply (a later part would fail the same way).
 */
export async function applyKfEvent(d: { store: Store; log: Logger; metrics: Metrics }, ev: KfEvent): Promise<void> {
  const log = d.log.child({ open_kfid: ev.open_kfid, external_userid: ev.external_userid, event: ev.type });
  switch (ev.type) {
    case 'session_status_change': {
      const state = STATE_AFTER_CHANGE[ev.change_type];
      if (state === undefined) return log.info({ change_type: ev.change_type }, 'unknown session change; ignored');
      await recordServiceState(d.store, ev.open_kfid, ev.external_userid, state, 'event');
      return log.info({ change_type: ev.change_type, service_state: state }, state === 4 ? 'conversation ended; the bot answers again' : 'a human holds the conversation; the bot stays silent');
    }
    case 'user_recall_msg':
      await d.store.set(keys.kfReplyCancelled(replyTag(ev.open_kfid, ev.recall_msgid)), 'recalled', CANCEL_TTL_MS);
      return log.info({ recall_msgid: ev.recall_msgid }, 'customer recalled a message; its reply is cancelled if not sent yet');
    case 'msg_send_fail': {
      d.metrics.kfSendFailed.inc({ fail_type: String(ev.fail_type ?? 'unknown') });
      const tag = replyTagOf(ev.fail_msgid);
      if (tag) await d.store.set(keys.kfReplyCancelled(tag), `send_fail:${ev.fail_type ?? 'unknown'}`, CANCEL_TTL_MS);
      return log.warn({ fail_msgid: ev.fail_msgid, fail_type: ev.fail_type, ours: tag !== null }, 'WeCom could not deliver a message');
    }
  }
}
