import type { Metrics } from '../../metrics.js';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { SLOT_TTL_MS, claimSlot, thirdDeliveryAfterMs, type MpTimings, type Slot, type SlotWatch } from './slots.js';

/** How one delivery (one HTTP request from WeChat) of a customer message is answered. */
export type DeliveryAnswer =
  /** the passive reply text (`stillThinking`: REPLY_STILL_THINKING, the answer is kept for the next message) */
  | { kind: 'reply'; text: string; stillThinking: boolean }
  /** `success`: the answer goes out through the customer-service API */
  | { kind: 'success' }
  /** not ready: answer 503 after the hold, past WeChat's deadline, so WeChat delivers again */
  | { kind: 'held' };

export interface DeliveryDeps extends MpTimings {
  store: Store;
  slots: SlotWatch;
  metrics: Metrics;
  /** REPLY_STILL_THINKING */
  stillThinking: string;
}

/** WeChat delivers a push three times in all; the third is the last chance to say anything. */
const LAST_DELIVERY = 3;

/**
 * Passive mode (docs/configuration.md "OA passive mode"): every delivery of a MsgId attaches to the one job; a delivery
 * waits for the job's slot up to WECHAT_MP_PASSIVE_HOLD_MS (past WeChat's 5 s, so WeChat gives up on it and
 * retries; it is never answered `success` or empty before that). The third delivery waits
 * WECHAT_MP_PASSIVE_LAST_MS (within the 5 s) and then claims the slot as GAVE_UP: REPLY_STILL_THINKING now, and
 * the answer is kept for the customer's next message. A delivery after a decided slot gets the same answer
 * again (WeChat retried, so it did not get the earlier one). The last delivery decides even when its connection
 * closes early or the server shuts down, so the answer is then kept rather than written for nobody.
 * @param first.firstAtMs epoch ms of the first delivery of this MsgId
 * @param first.counted false for a request identical to one being held or already answered (a replay): it
 *   waits like any delivery but does not raise the count, so only distinct deliveries (or time) make the third
 * @param signal aborted when the connection closes or the server shuts down: stop waiting
 */
export async function answerPassive(
  d: DeliveryDeps,
  jobId: string,
  first: { firstAtMs: number; counted: boolean },
  signal: AbortSignal,
): Promise<DeliveryAnswer> {
  const { firstAtMs } = first;
  const n = first.counted ? await d.store.incr(keys.mpDeliveries(jobId), SLOT_TTL_MS) : Number((await d.store.get(keys.mpDeliveries(jobId))) ?? 1);
  const last = n >= LAST_DELIVERY || Date.now() - firstAtMs >= thirdDeliveryAfterMs(d);
  const slot = await d.slots.wait(jobId, last ? d.passiveLastMs : d.passiveHoldMs, signal);
  if (slot) return count(d, fromSlot(d, slot));
  if (!last) return count(d, { kind: 'held' });
  return count(d, fromSlot(d, await claimSlot(d.store, jobId, 'GAVE_UP')));
}

/**
 * Auto mode: a one-part answer ready within WECHAT_MP_AUTO_HOLD_MS is the passive reply (no quota spent, no
 * 48001 risk); otherwise the delivery claims the slot as ACTIVE and answers `success`, and the job sends
 * through custom/send. A delivery cut short (connection closed, shutdown) claims ACTIVE too, so the answer
 * still leaves.
 */
export async function answerAuto(d: DeliveryDeps, jobId: string, signal: AbortSignal): Promise<DeliveryAnswer> {
  const slot = (await d.slots.wait(jobId, d.autoHoldMs, signal)) ?? (await claimSlot(d.store, jobId, 'ACTIVE'));
  return count(d, fromSlot(d, slot));
}

function fromSlot(d: DeliveryDeps, slot: Slot): DeliveryAnswer {
  if (slot === 'ACTIVE' || slot === 'NONE') return { kind: 'success' };
  if (slot === 'GAVE_UP') return { kind: 'reply', text: d.stillThinking, stillThinking: true };
  return { kind: 'reply', text: slot.reply, stillThinking: false };
}

function count(d: DeliveryDeps, a: DeliveryAnswer): DeliveryAnswer {
  const outcome =
    a.kind === 'held' ? 'held' : a.kind === 'success' ? 'acked' : a.stillThinking ? 'still_thinking' : 'answered';
  d.metrics.mpDeliveries.inc({ outcome });
  return a;
}
