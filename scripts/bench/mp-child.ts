/**
 * The benchmark's WeChat side for the OA figures, in its own process (so building ciphertexts and answering
 * custom/send never takes CPU from the load generator): the strict fake OA API (test/fakes/wechat-mp-api.ts), plus
 * a maker of distinct signed, encrypted (safe mode) text callbacks and a counter of the answers it received.
 * Controlled over IPC (see mp-side.ts for the typed side):
 *  - {cmd:'callbacks', id, tag, count} → {type:'callbacks', id, requests: PacedRequest[]}: customer `o<tag>_<i>`
 *    sends `bench <tag> <i>` with a fresh MsgId; each customer is marked as having just written (the fake's
 *    custom/send refuses customers who never did, 45015);
 *  - {cmd:'sent', id, tag, expect} → {type:'sent', id, customers, matching, others, firstAt, lastAt}: customers of
 *    `tag` that got a custom/send, those whose text starts with `expect` (the agent's answer, not a fallback text),
 *    the other texts sent (the 3 most frequent, first 20 characters, with their counts), and the first and last
 *    send's arrival (epoch ms; NaN when none);
 *  - {cmd:'exit'}.
 */
import { startFakeMpApi } from '../../test/fakes/wechat-mp-api.js';
import { buildMpPush, textMsg } from '../../test/fakes/wechat-mp-push.js';
import { BENCH_MP, BENCH_MP_SECRET } from './creds.js';
import type { PacedRequest } from './paced.js';

const MP_PATH = '/wechat/mp/callback';
const api = await startFakeMpApi({ appId: BENCH_MP.appId, appSecret: BENCH_MP_SECRET });
process.send?.({ type: 'ready', url: api.url });

type Command = { cmd: 'callbacks'; id: number; tag: string; count: number } | { cmd: 'sent'; id: number; tag: string; expect: string } | { cmd: 'exit' };

process.on('message', (m: Command) => {
  if (m.cmd === 'callbacks') process.send?.({ type: 'callbacks', id: m.id, requests: callbacks(m.tag, m.count) });
  if (m.cmd === 'sent') process.send?.({ type: 'sent', id: m.id, ...sent(m.tag, m.expect) });
  if (m.cmd === 'exit') void api.close().then(() => process.exit(0));
});

function callbacks(tag: string, count: number): PacedRequest[] {
  return Array.from({ length: count }, (_, i) => {
    const openid = `o${tag}_${i}`;
    api.userInteracted(openid, 'message');
    const push = buildMpPush(BENCH_MP, 'safe', textMsg(BENCH_MP, openid, `bench ${tag} ${i}`));
    return { path: `${MP_PATH}?${push.query}`, body: push.body, headers: { 'content-type': 'text/xml' } };
  });
}

function sent(tag: string, expect: string) {
  const prefix = `o${tag}_`;
  const customers = new Set<string>();
  const matching = new Set<string>();
  const others = new Map<string, number>();
  let firstAt = Infinity;
  let lastAt = -Infinity;
  for (const s of api.sent) {
    if (!s.touser.startsWith(prefix)) continue;
    customers.add(s.touser);
    if (s.content?.startsWith(expect)) matching.add(s.touser);
    else {
      const text = (s.content ?? `[${s.msgtype}]`).slice(0, 20);
      others.set(text, (others.get(text) ?? 0) + 1);
    }
    firstAt = Math.min(firstAt, s.at);
    lastAt = Math.max(lastAt, s.at);
  }
  return {
    customers: customers.size,
    matching: matching.size,
    others: [...others].sort((x, y) => y[1] - x[1]).slice(0, 3),
    firstAt: customers.size ? firstAt : NaN,
    lastAt: customers.size ? lastAt : NaN,
  };
}
