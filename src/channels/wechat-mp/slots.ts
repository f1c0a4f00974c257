import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

/**
 * The "slot" of one OA message decides, once and across processes, how its answer leaves. The job handler and
 * the held deliveries race to write it with set-if-absent, and the first writer wins:
 *  - `{reply}` (handler): the passive reply every later delivery of this MsgId answers with (a retry means
 *    WeChat did not get the earlier response, so the same reply is served again);
 *  - `GAVE_UP` (third passive delivery): the customer was told REPLY_STILL_THINKING; the handler keeps the
 *    answer for the customer's next message instead;
 *  - `ACTIVE` (auto mode, hold over, or a multi-part answer): the handler sends through custom/send and the
 *    delivery answers `success`;
 *  - `NONE` (handler): no reply at all (a customer over the rate limit): deliveries answer `success`.
 */
export type Slot = { reply: string } | 'GAVE_UP' | 'ACTIVE' | 'NONE';

/** A slot outlives WeChat's retries (~15 s) by far; a day keeps late retries answered the same way. */
export const SLOT_TTL_MS = 24 * 3600_000;

/** The stored form of a slot: the marker names as they are, a reply as JSON `{"reply": text}`. */
export function encodeSlot(s: Slot): string {
  return typeof s === 'string' ? s : JSON.stringify(s);
}

/** Reads a stored slot back. @returns null when nothing is stored or the value is not a slot */
export function decodeSlot(raw: string | null): Slot | null {
  if (raw === null) return null;
  if (raw === 'GAVE_UP' || raw === 'ACTIVE' || raw === 'NONE') return raw;
  try {
    const v = JSON.parse(raw) as { reply?: unknown };
    return typeof v.reply === 'string' ? { reply: v.reply } : null;
  } catch {
    return null;
  }
}

/** Passive/auto timing of one account, ms (WECHAT_MP_AUTO_HOLD_MS, WECHAT_MP_PASSIVE_HOLD_MS, _LAST_MS). */
export interface MpTimings {
  autoHoldMs: number;
  passiveHoldMs: number;
  passiveLastMs: number;
}

/**
 * WeChat's retries start about D and 2·D after the first delivery (D = its 5 s deadline, LAST < D < HOLD). A
 * delivery arriving this long after the first is the third even if one went uncounted (an earlier delivery got
 * 503 before reaching the counter): never before HOLD (the second arrives at D < HOLD), and halfway between HOLD
 * and 2·LAST when that is later (7.25 s with the defaults). If this misses a third delivery the counter still
 * catches it in the normal case.
 */
export function thirdDeliveryAfterMs(t: MpTimings): number {
  return Math.max(t.passiveHoldMs, (t.passiveHoldMs + 2 * t.passiveLastMs) / 2);
}

/**
 * After this long from the first delivery no delivery can carry a passive reply any more (the third gave up at
 * about 2·D + LAST < 2·HOLD + LAST), so a job finishing later (after a crash, a backlog) keeps its answer for the
 * customer's next message instead of writing a reply nobody serves. Auto mode: the hold plus a margin.
 */
export function passiveTooLateMs(t: MpTimings, delivery: 'passive' | 'auto'): number {
  return delivery === 'passive' ? 2 * t.passiveHoldMs + t.passiveLastMs + 1000 : t.autoHoldMs + 1000;
}

/** Records the first delivery of a MsgId (time and reply mode) once; later deliveries read it back. */
export async function firstDelivery<M extends string>(store: Store, jobId: string, nowMs: number, mode: M): Promise<{ atMs: number; mode: M }> {
  const key = keys.mpFirstDelivery(jobId);
  if (await store.setIfAbsent(key, `${nowMs}:${mode}`, SLOT_TTL_MS)) return { atMs: nowMs, mode };
  const [at, stored] = (await store.get(key))?.split(':') ?? [];
  return Number.isFinite(Number(at)) && stored ? { atMs: Number(at), mode: stored as M } : { atMs: nowMs, mode };
}

/** Set-if-absent. @returns the slot now in force (ours when we won, else the winner's) */
export async function claimSlot(store: Store, jobId: string, slot: Slot): Promise<Slot> {
  if (await store.setIfAbsent(keys.mpSlot(jobId), encodeSlot(slot), SLOT_TTL_MS)) return slot;
  return decodeSlot(await store.get(keys.mpSlot(jobId))) ?? slot;
}

/** Wakes held deliveries in this process as soon as a slot is written here; other processes poll. */
export interface SlotWatch {
  notify(jobId: string): void;
  /**
   * Resolves with the slot once one is written, or null when `timeoutMs` passes or `signal` aborts.
   * Polls the store every `pollMs` (a slot written by another process) and wakes at once on `notify`.
   */
  wait(jobId: string, timeoutMs: number, signal: AbortSignal): Promise<Slot | null>;
}

/**
 * @param pollMs how often a waiting delivery re-reads the store (a slot written by another process), ms
 */
export function createSlotWatch(store: Store, pollMs = 200): SlotWatch {
  const waiters = new Map<string, Set<() => void>>();
  return {
    notify: (jobId) => waiters.get(jobId)?.forEach((wake) => wake()),
    wait: async (jobId, timeoutMs, signal) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const slot = decodeSlot(await store.get(keys.mpSlot(jobId)));
        const left = deadline - Date.now();
        if (slot || left <= 0 || signal.aborted) return slot;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            set.delete(done);
            if (set.size === 0) waiters.delete(jobId);
            resolve();
          };
          const timer = setTimeout(done, Math.min(pollMs, left));
          const set = waiters.get(jobId) ?? new Set<() => void>();
          waiters.set(jobId, set.add(done));
          signal.addEventListener('abort', done, { once: true });
        });
      }
    },
  };
}
