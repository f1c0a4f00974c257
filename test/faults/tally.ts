/**
 * The accounting of one scenario: replies at the fake's send_msg per inbound message → answered, duplicates (replies
 * beyond one), lost (none); a reply with the wrong text or matching no message, and a server that died by itself,
 * are failures. Notes: the fake's error answers, the feeder's retries, reply latency, examples of what went wrong.
 */
import type { Result } from './util.js';
import type { Scenario } from './world.js';

/** `a×2, b×1` */
export const tallyOf = (keys: Iterable<string>): string => {
  const n = new Map<string, number>();
  for (const k of keys) n.set(k, (n.get(k) ?? 0) + 1);
  return [...n].map(([k, c]) => `${k}×${c}`).join(', ');
};

export function tally(s: Scenario): Result {
  const { per, stray } = s.replies();
  let answered = 0;
  let duplicates = 0;
  const wrong: string[] = [];
  for (const [m, list] of per) {
    if (list.length > 0) answered++;
    duplicates += Math.max(0, list.length - 1);
    for (const r of list) if (!s.expectText(m, r.content ?? '')) wrong.push(`${m.text} → ${JSON.stringify(r.content)}`);
  }
  if (wrong.length > 0) s.failures.push(`${wrong.length} replies with a wrong text, e.g. ${wrong.slice(0, 3).join('; ')}`);
  if (stray.length > 0) {
    const eg = stray.slice(0, 3).map((r) => `${r.touser}: ${JSON.stringify(r.content)}`).join('; ');
    s.failures.push(`${stray.length} replies matched no customer message, e.g. ${eg}`);
  }
  for (const b of s.bridges) s.failures.push(...b.crashes);
  const errs = s.fake.calls.filter((c) => c.errcode !== 0).map((c) => `${c.api} ${c.errcode}`);
  if (errs.length > 0) s.notes.push(`fake WeCom answered errcodes: ${tallyOf(errs)}`);
  if (s.refusals.length > 0) s.notes.push(`callbacks retried after: ${tallyOf(s.refusals)}`);
  const waits = s.msgs
    .map((m) => (per.get(m)![0]?.at ?? NaN) - (m.acceptedAt ?? NaN))
    .filter((w) => Number.isFinite(w))
    .sort((a, b) => a - b);
  if (waits.length > 0) {
    const p50 = waits[Math.floor(waits.length / 2)]!;
    s.notes.push(`reply after its callback was accepted: median ${Math.round(p50)} ms, slowest ${(waits.at(-1)! / 1000).toFixed(1)} s`);
  }
  // Written order per customer (s.msgs is in the order the feeder wrote them) against the first reply's arrival.
  // A note, not a failure: an older message stuck past the lease may be overtaken on purpose.
  const byUser = new Map<string, number[]>();
  for (const m of s.msgs) {
    const at = per.get(m)![0]?.at;
    if (at !== undefined) byUser.set(m.user, [...(byUser.get(m.user) ?? []), at]);
  }
  const several = [...byUser.values()].filter((ts) => ts.length > 1);
  const outOfOrder = several.filter((ts) => ts.some((t, i) => i > 0 && t < ts[i - 1]!)).length;
  if (several.length > 0) s.notes.push(`per-customer order: ${several.length - outOfOrder} of ${several.length} customers with several messages answered in the order written`);
  if (duplicates > 0) {
    const eg = s.msgs.filter((m) => per.get(m)!.length > 1).slice(0, 3);
    s.notes.push(`duplicated e.g.: ${eg.map((m) => `${m.user} "${m.text}" ×${per.get(m)!.length} msgid ${m.msgid}`).join('; ')}`);
  }
  const lost = s.msgs.length - answered;
  if (lost > 0) {
    const eg = s.msgs.filter((m) => per.get(m)!.length === 0).slice(0, 3);
    s.notes.push(`lost e.g.: ${eg.map((m) => `${m.user} "${m.text}" msgid ${m.msgid}`).join('; ')}`);
  }
  return {
    key: s.key,
    label: s.label,
    messagesIn: s.msgs.length,
    answered,
    duplicates,
    lost,
    seconds: (Date.now() - s.started) / 1000,
    failures: s.failures,
    notes: s.notes,
  };
}
