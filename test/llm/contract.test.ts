/**
 * The LLM adapter contract (docs/providers.md §6–§7, docs/configuration.md "LLM failures"), run against every
 * adapter over its protocol-faithful fake. Provider differences live in the drivers (contract-drivers.ts);
 * provider-only behaviour is in providers.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LlmError } from '../../src/errors.js';
import { stripReasoning } from '../../src/format/reasoning.js';
import { runLlm, type LlmOutcome, type RunLlmOptions } from '../../src/llm/run.js';
import type { ChatTurn, LlmAdapter } from '../../src/llm/types.js';
import { DRIVERS, failure, imageReq, never, PNG_1X1, req, sleep, until, type ConversationOps, type Harness } from './contract-drivers.js';

const Q = '你们周末营业吗？';
const A = '您好！我们周末也营业，营业时间是 9:00-18:00。';
const Q2 = '那节假日呢？';
const A2 = '节假日正常营业，欢迎光临。';

/** The first `n` code points of `s` (the fakes cut deltas by code points). */
const head = (s: string, n: number) => Array.from(s).slice(0, n).join('');
const run = (a: LlmAdapter, o: Partial<RunLlmOptions> = {}): Promise<LlmOutcome> =>
  runLlm(a, req(Q), { timeoutMs: 5000, signal: never(), minBackoffMs: 10, ...o });
const errorOf = (out: LlmOutcome): unknown => (out.ok ? null : out.error);
function conversation(h: Harness): ConversationOps {
  if (h.state.kind !== 'conversation') throw new Error('driver claims conversation recovery but keeps history');
  return h.state;
}

for (const driver of DRIVERS) {
  describe(`adapter contract: ${driver.name}`, () => {
    let h: Harness;
    beforeEach(async () => {
      h = await driver.start();
    });
    afterEach(async () => {
      await h.close();
    });
    /** After an outcome, give a stray retry time to show up before counting requests. */
    const settledCount = async () => (await sleep(150), h.requestCount());
    /** The partial text a failure after `n` code points of the default answer carries: none without streaming. */
    const partialOf = (n: number) => (driver.streams ? head(h.defaultAnswer(Q), n) : '');

    it('plain Chinese answer: exact text, finish reason stop, usage as the provider reported it', async () => {
      h.script({ kind: 'answer', text: A, chunkSize: 3 });
      const r = await h.adapter().reply(req(Q), never());
      expect(r.text).toBe(A);
      expect(r.finishReason).toBe('stop');
      expect(r.usage).toEqual(h.usage(Q, A));
      expect(h.requestCount()).toBe(1);
    });

    it('conversation state round trip: the second call with the returned state continues the conversation', async () => {
      h.script({ kind: 'answer', text: A }, { kind: 'answer', text: A2 });
      const a = h.adapter();
      const r1 = await a.reply(req(Q), never());
      const r2 = await a.reply(req(Q2, r1.state), never());
      expect(r2.text).toBe(A2);
      const s = h.state;
      if (s.kind === 'conversation') {
        const id = r1.state?.conversationId;
        expect(id).toEqual(expect.any(String));
        expect(r1.state).toEqual({ conversationId: id });
        expect(s.sentId(0)).toBeNull();
        expect(s.sentId(1)).toBe(id);
        expect(r2.state).toEqual({ conversationId: id });
        expect(s.userTurns(String(id))).toEqual([Q, Q2]);
      } else if (s.kind === 'opaque') {
        expect(s.sentState(0)).toBeNull();
        expect(s.answeredState(0)).not.toBeUndefined();
        expect(s.sentState(1)).toEqual(s.answeredState(0));
        expect(r2.state).not.toBeNull();
      } else {
        const system = s.systemPrompt ? [{ role: 'system', content: s.systemPrompt }] : [];
        const turn1 = [{ role: 'user', content: Q }, { role: 'assistant', content: A }];
        expect(r1.state).toEqual({ history: turn1 });
        expect(s.sentMessages(0)).toEqual([...system, { role: 'user', content: Q }]);
        expect(s.sentMessages(1)).toEqual([...system, ...turn1, { role: 'user', content: Q2 }]);
        expect(r2.state).toEqual({ history: [...turn1, { role: 'user', content: Q2 }, { role: 'assistant', content: A2 }] });
      }
    });

    it('a reset (null state) starts over: nothing of the earlier turn is sent', async () => {
      const a = h.adapter();
      await a.reply(req(Q), never());
      const r2 = await a.reply(req(Q2, null), never());
      expect(r2.text).toBe(h.defaultAnswer(Q2));
      const s = h.state;
      if (s.kind === 'conversation') expect(s.sentId(1)).toBeNull();
      else if (s.kind === 'opaque') expect(s.sentState(1)).toBeNull();
      else {
        const system = s.systemPrompt ? [{ role: 'system', content: s.systemPrompt }] : [];
        expect(s.sentMessages(1)).toEqual([...system, { role: 'user', content: Q2 }]);
      }
      expect(JSON.stringify(h.sentBody(1))).not.toContain(Q);
    });

    it('credentials: the configured Authorization header, and none at all when the agent has none', async () => {
      await h.adapter().reply(req(Q), never());
      expect(h.authorization(0)).toBe(driver.credential.header ?? undefined);
      if (driver.credential.optional) {
        await h.adapter({ anonymous: true }).reply(req(Q), never());
        expect(h.authorization(1)).toBeUndefined();
      }
    });

    it('a caller\'s own history (/v1): sent instead of the stored one with a null state back, or ignored where the provider keeps the conversation', async () => {
      const history: ChatTurn[] = [{ role: 'user', content: '之前的问题' }, { role: 'assistant', content: '之前的回答' }];
      const stored = h.state.kind === 'history' ? { history: [{ role: 'user', content: '存着的问题' }, { role: 'assistant', content: '存着的回答' }] } : null;
      const r = await h.adapter().reply({ ...req(Q, stored), history }, never());
      expect(r.text).toBe(h.defaultAnswer(Q));
      const s = h.state;
      if (s.kind === 'conversation') {
        expect(JSON.stringify(h.sentBody(0))).not.toContain('之前的');
        expect(r.state).toEqual({ conversationId: expect.any(String) });
        return;
      }
      expect(r.state).toBeNull();
      if (s.kind === 'history') {
        const system = s.systemPrompt ? [{ role: 'system', content: s.systemPrompt }] : [];
        expect(s.sentMessages(0)).toEqual([...system, ...history, { role: 'user', content: Q }]);
      } else {
        expect(h.sentBody(0)).toMatchObject({ history, message: { type: 'text', text: Q, images: [] } });
      }
    });

    it('onText: growing snapshots of the visible answer; a think block split across chunks never shows; the last equals the final text stripped', async () => {
      const raw = `<think>先查一下营业时间。</think>\n${A}`;
      h.script({ kind: 'answer', text: raw, chunkSize: 3 }, { kind: 'answer', text: raw, chunkSize: 3 });
      const seen: string[] = [];
      const r = await h.adapter().reply({ ...req(Q), onText: (t) => void seen.push(t) }, never());
      const plain = await h.adapter().reply(req(Q), never());
      // onText changes nothing of the result
      expect(r.text).toBe(raw);
      expect({ ...r, requestId: undefined, state: undefined }).toEqual({ ...plain, requestId: undefined, state: undefined });
      expect(seen.at(-1)).toBe(stripReasoning(raw));
      if (driver.streams) expect(seen.length).toBeGreaterThan(3);
      else expect(seen).toHaveLength(1);
      for (const [i, t] of seen.entries()) {
        expect(t).not.toMatch(/think|查一下|</);
        if (i > 0) {
          expect(t.startsWith(seen[i - 1] ?? '')).toBe(true);
          expect(t.length).toBeGreaterThan(seen[i - 1]?.length ?? 0);
        }
      }
    });

    it('an image turn: the provider gets the exact bytes once; the state holds no image, the next turn does not resend it', async () => {
      const a = h.adapter();
      expect(a.acceptsImages).toBe(true);
      const r1 = await a.reply(imageReq(Q), never());
      expect(r1.text).toBe(h.defaultAnswer(Q));
      expect(h.receivedImages()).toEqual([PNG_1X1]);
      const b64 = PNG_1X1.toString('base64').slice(0, 24);
      expect(JSON.stringify(r1.state)).not.toContain(b64);
      const r2 = await a.reply(req(Q2, r1.state), never());
      expect(r2.text).toBe(h.defaultAnswer(Q2));
      expect(h.receivedImages()).toHaveLength(1);
      if (h.state.kind === 'history') expect(JSON.stringify(h.state.sentMessages(1))).not.toContain(b64);
    });

    if (driver.recoversExpiredConversation) {
      it('expired conversation: one retry without the id succeeds and the state holds the new id', async () => {
        const s = conversation(h);
        const a = h.adapter();
        const r1 = await a.reply(req(Q), never());
        const oldId = String(r1.state?.conversationId);
        s.expire(oldId);
        h.script({ kind: 'answer', text: A2 });
        const r2 = await a.reply(req(Q2, r1.state), never());
        expect(r2.text).toBe(A2);
        expect(await settledCount()).toBe(3);
        expect(s.sentId(1)).toBe(oldId);
        expect(s.sentId(2)).toBeNull();
        const newId = s.newestId();
        expect(newId).toEqual(expect.any(String));
        expect(newId).not.toBe(oldId);
        expect(r2.state).toEqual({ conversationId: newId });
        expect(s.userTurns(String(newId))).toEqual([Q2]);
      });
    }

    it('auth error → auth, not retryable; runLlm makes no second request', async () => {
      h.script({ kind: 'auth' }, { kind: 'auth' }, { kind: 'answer', text: A });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'auth', retryable: false, status: driver.auth.status, partialText: '' });
      expect(e.options.code ?? null).toBe(driver.auth.code);
      const out = await run(h.adapter());
      expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
      expect(await settledCount()).toBe(2);
    });

    it('rate limit → rate_limit, retryable', async () => {
      h.script({ kind: 'rate-limit' });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'rate_limit', retryable: true, status: driver.rateLimit.status, partialText: '' });
      expect(e.options.code ?? null).toBe(driver.rateLimit.code);
      expect(e.options.retryAfterMs ?? null).toBe(driver.rateLimit.retryAfterMs);
    });

    it('HTTP 503 → upstream, retryable, with the HTTP status', async () => {
      h.script({ kind: 'status', status: 503 });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'upstream', retryable: true, status: 503, partialText: '' });
    });

    it('5xx then success through runLlm → ok after 2 attempts, one answer', async () => {
      h.script({ kind: 'status', status: 500 }, { kind: 'answer', text: A });
      const out = await run(h.adapter());
      expect(out).toMatchObject({ ok: true, attempts: 2, result: { text: A, finishReason: 'stop' } });
      expect(await settledCount()).toBe(2);
    });

    if (driver.streams) it('error mid-stream after 2 deltas → partial text, not retryable; runLlm does not ask again', async () => {
      const partial = head(h.defaultAnswer(Q), 8);
      h.script({ kind: 'error-mid', afterDeltas: 2 }, { kind: 'error-mid', afterDeltas: 2 }, { kind: 'answer', text: A });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: partial });
      const out = await run(h.adapter());
      expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
      expect(errorOf(out)).toMatchObject({ partialText: partial });
      expect(await settledCount()).toBe(2);
    });

    if (driver.streams) it('socket dropped after 2 deltas → upstream with partial text, not retryable', async () => {
      h.script({ kind: 'drop', afterDeltas: 2 });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: head(h.defaultAnswer(Q), 8) });
    });

    it('headers then silence: idleMs 300 fails the call within ~1 s as retryable upstream and closes the socket', async () => {
      h.script({ kind: 'hang' });
      const t0 = performance.now();
      const e = await failure(h.adapter({ idleMs: 300 }).reply(req(Q), never()));
      const elapsed = performance.now() - t0;
      expect(e).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1000);
      await until(() => h.closedByClient(0));
      expect(h.closedByClient(0)).toBe(true);
    });

    it('caller cancel mid-stream → aborted, the socket closes, no unhandled rejection', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (r: unknown) => void unhandled.push(r);
      process.on('unhandledRejection', onUnhandled);
      try {
        h.script({ kind: 'answer', text: A, chunkSize: 4, delayMs: 1500 });
        const ac = new AbortController();
        const t0 = performance.now();
        const p = h.adapter().reply(req(Q), ac.signal);
        await h.waitForRequests(1);
        await sleep(200); // headers are in (and the first delta where the fake sends it at once); the next is 1.5 s away
        ac.abort();
        const e = await failure(p);
        expect(performance.now() - t0).toBeLessThan(1000);
        expect(e).toMatchObject({ kind: 'aborted', retryable: false, partialText: driver.firstDeltaImmediate && driver.streams ? head(A, 4) : '' });
        await until(() => h.closedByClient(0));
        expect(h.closedByClient(0)).toBe(true);
        await sleep(50);
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('a first byte later than the runLlm deadline → timeout after one attempt, the request is cancelled', async () => {
      h.script({ kind: 'answer', text: A, firstByteDelayMs: 3000 });
      const t0 = performance.now();
      const out = await run(h.adapter(), { timeoutMs: 400 });
      expect(out).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
      expect(performance.now() - t0).toBeLessThan(1000);
      await until(() => h.closedByClient(0));
      expect(h.closedByClient(0)).toBe(true);
      expect(await settledCount()).toBe(1);
    });

    it('a very long answer (> 64 KB of Chinese text) arrives exact', async () => {
      const text = Array.from({ length: 6000 }, (_, i) => `第${i}条：您好，我们周末也营业。`).join('\n');
      expect(Buffer.byteLength(text)).toBeGreaterThan(64 * 1024);
      h.script({ kind: 'answer', text, chunkSize: 1000 });
      const r = await h.adapter().reply(req(Q), never());
      expect(r.text.length).toBe(text.length);
      expect(r.text).toBe(text);
    });

    if (driver.streams) it('a stream that ends without the terminal event → truncated, partial text, not retryable', async () => {
      h.script({ kind: 'truncate', afterDeltas: 2 });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'truncated', retryable: false, partialText: head(h.defaultAnswer(Q), 8) });
    });

    it('a frame of invalid JSON → protocol, not retryable', async () => {
      h.script({ kind: 'invalid-json', afterDeltas: 1 });
      const e = await failure(h.adapter().reply(req(Q), never()));
      expect(e).toBeInstanceOf(LlmError);
      expect(e).toMatchObject({ kind: 'protocol', retryable: false, partialText: partialOf(4) });
    });

    if (!driver.streams) {
      it('a 200 without an answer (the agent\'s error object) → protocol, not retryable; runLlm does not ask again', async () => {
        h.script({ kind: 'error-mid', afterDeltas: 0 }, { kind: 'error-mid', afterDeltas: 0 }, { kind: 'answer', text: A });
        const e = await failure(h.adapter().reply(req(Q), never()));
        expect(e).toMatchObject({ kind: 'protocol', retryable: false, partialText: '', status: 200 });
        const out = await run(h.adapter());
        expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
        expect(await settledCount()).toBe(2);
      });

      it('socket dropped in the middle of the answer → upstream, retryable (nothing was shown); runLlm asks again', async () => {
        h.script({ kind: 'drop', afterDeltas: 0 }, { kind: 'drop', afterDeltas: 0 }, { kind: 'answer', text: A });
        const e = await failure(h.adapter().reply(req(Q), never()));
        expect(e).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
        const out = await run(h.adapter());
        expect(out).toMatchObject({ ok: true, attempts: 2, result: { text: A } });
      });

      it('an answer body cut short (a JSON document that ends early) → protocol, not retryable', async () => {
        h.script({ kind: 'truncate', afterDeltas: 0 });
        const e = await failure(h.adapter().reply(req(Q), never()));
        expect(e).toMatchObject({ kind: 'protocol', retryable: false, partialText: '' });
      });
    }
  });
}
