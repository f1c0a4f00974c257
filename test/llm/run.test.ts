import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LlmError } from '../../src/errors.js';
import { createOpenAiAdapter } from '../../src/llm/openai.js';
import { runLlm, type LlmOutcome, type RunLlmOptions } from '../../src/llm/run.js';
import type { LlmAdapter, ReplyRequest } from '../../src/llm/types.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';

const KEY = 'sk-run-test';
let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await startFakeOpenAI({ apiKey: KEY });
});
afterEach(async () => {
  await fake.close();
});

const req: ReplyRequest = { userId: 'kf:wk:wm', text: 'hello', state: null, traceId: 'msg-1' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one customer message against the fake; `elapsed` is wall time in ms. */
async function run(o: Partial<RunLlmOptions> = {}, idleMs?: number): Promise<{ out: LlmOutcome; elapsed: number }> {
  const adapter = createOpenAiAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: KEY, model: 'm', systemPrompt: null, idleMs });
  const t0 = performance.now();
  const out = await runLlm(adapter, req, { timeoutMs: 5000, signal: new AbortController().signal, minBackoffMs: 10, ...o });
  return { out, elapsed: performance.now() - t0 };
}
/** The failed outcome's LlmError kind (fails the test if the outcome is ok). */
function errorKind(out: LlmOutcome): string {
  if (out.ok) throw new Error('expected a failed outcome');
  return out.error instanceof LlmError ? out.error.kind : `not an LlmError: ${String(out.error)}`;
}
/** After an outcome, give a stray retry time to show up before counting requests. */
async function settledCount(): Promise<number> {
  await sleep(150);
  return fake.requests.length;
}
const gap = (i: number) => fake.requests[i]!.receivedAt - fake.requests[i - 1]!.receivedAt;

describe('runLlm: retries', () => {
  it('500 then 200 → ok on the second attempt', async () => {
    fake.script({ kind: 'status', status: 500 });
    const { out } = await run();
    expect(out).toMatchObject({ ok: true, attempts: 2, result: { text: 'AI:hello', finishReason: 'stop' } });
    expect(await settledCount()).toBe(2);
  });

  it('500 three times → error after exactly 3 requests (2 retries)', async () => {
    fake.setDefault({ kind: 'status', status: 500 });
    const { out } = await run({ retries: 2 });
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 3 });
    expect(errorKind(out)).toBe('upstream');
    expect(await settledCount()).toBe(3);
  });

  it('defaults to 2 retries', async () => {
    fake.setDefault({ kind: 'status', status: 503 });
    const { out } = await run({ retries: undefined });
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 3 });
    expect(await settledCount()).toBe(3);
  });

  it('401 → error after exactly 1 request (not retryable), although the next attempt would succeed', async () => {
    fake.script({ kind: 'status', status: 401 });
    const { out } = await run();
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(errorKind(out)).toBe('auth');
    expect(await settledCount()).toBe(1);
  });

  it('400 → error after 1 request', async () => {
    fake.script({ kind: 'status', status: 400 });
    const { out } = await run();
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(await settledCount()).toBe(1);
  });

  it('a drop after partial text → error after 1 request: never retried once text has streamed', async () => {
    fake.script({ kind: 'drop', afterDeltas: 2 });
    const { out } = await run();
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect((out as { error: LlmError }).error.partialText).toBe('AI:hello');
    expect(await settledCount()).toBe(1);
  });

  it('a truncation or error frame after partial text → error, never retried', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 1 }, { kind: 'error-frame', afterDeltas: 1 });
    const a = await run();
    expect(a.out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(errorKind(a.out)).toBe('truncated');
    const b = await run();
    expect(b.out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(await settledCount()).toBe(2);
  });

  it('a truncation, a drop and an idle hang before any text are retried, then ok', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 0 }, { kind: 'drop', afterDeltas: 0 });
    expect((await run()).out).toMatchObject({ ok: true, attempts: 3, result: { text: 'AI:hello' } });
    fake.script({ kind: 'hang' });
    const { out, elapsed } = await run({}, 200);
    expect(out).toMatchObject({ ok: true, attempts: 2 });
    expect(elapsed).toBeLessThan(1500);
  });

  it('an invalid JSON frame → error, not retried', async () => {
    fake.script({ kind: 'invalid-json', afterDeltas: 0 });
    const { out } = await run();
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(errorKind(out)).toBe('protocol');
  });
});

describe('runLlm: an unreachable provider', () => {
  it('a refused connection is retried, then fails naming the host it could not reach (never the path or key)', async () => {
    const { freePort } = await import('../setup/services.js');
    const port = await freePort(); // nothing listens there
    const adapter = createOpenAiAdapter({ http: axios.create({ baseURL: `http://127.0.0.1:${port}/v1?key=${KEY}` }), apiKey: KEY, model: 'm', systemPrompt: null });
    const out = await runLlm(adapter, req, { timeoutMs: 5000, signal: new AbortController().signal, minBackoffMs: 10 });
    if (out.ok) throw new Error('expected a failure');
    expect(out.attempts).toBe(3);
    const message = (out.error as Error).message;
    expect(message).toContain(`transport failure ECONNREFUSED reaching 127.0.0.1:${port}`);
    expect(message).not.toContain(KEY);
  });
});

describe('runLlm: retry rule on its own (in-process adapters)', () => {
  /** An adapter that throws `errors` in turn, then answers; counts its calls. */
  function scripted(errors: unknown[]): LlmAdapter & { calls: number } {
    const a = {
      provider: 'scripted',
      answersInMarkdown: false,
      acceptsImages: false,
      calls: 0,
      reply: async () => {
        const e = errors[a.calls++];
        if (e) throw e;
        return { text: 'ok', state: null, usage: null, finishReason: 'stop' as const };
      },
    };
    return a;
  }
  const opts = () => ({ timeoutMs: 2000, signal: new AbortController().signal, minBackoffMs: 1 });

  it('a retryable error that carries partial text is not retried (the caller checks, not only the adapter)', async () => {
    const a = scripted([new LlmError('upstream', 'cut', { retryable: true, partialText: '半' })]);
    expect(await runLlm(a, req, opts())).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(a.calls).toBe(1);
  });

  it('an error that is not an LlmError is not retried and becomes error', async () => {
    const a = scripted([new TypeError('bug')]);
    expect(await runLlm(a, req, opts())).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(a.calls).toBe(1);
  });

  it('retries: 0 means one attempt only', async () => {
    const a = scripted([new LlmError('upstream', '500', { retryable: true })]);
    expect(await runLlm(a, req, { ...opts(), retries: 0 })).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
  });
});

describe('runLlm: backoff', () => {
  it('honours minBackoffMs, doubling: two 500s then 200 with minBackoffMs 100 take ≥ 300 ms', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const { out, elapsed } = await run({ minBackoffMs: 100 });
    expect(out).toMatchObject({ ok: true, attempts: 3 });
    expect(elapsed).toBeGreaterThanOrEqual(298); // timers may fire up to ~1 ms early
    expect(elapsed).toBeLessThan(1000); // not the 500 ms default
    expect(gap(1)).toBeGreaterThanOrEqual(98);
    expect(gap(2)).toBeGreaterThanOrEqual(198);
  });

  it("honours a 429's retry-after when it fits the deadline", async () => {
    fake.script({ kind: 'status', status: 429, retryAfterS: 1 });
    const { out, elapsed } = await run({ timeoutMs: 5000 });
    expect(out).toMatchObject({ ok: true, attempts: 2 });
    expect(gap(1)).toBeGreaterThanOrEqual(995);
    expect(elapsed).toBeLessThan(2500);
  });

  it('a retry-after that cannot fit the deadline fails at once as error (no waiting, no second request)', async () => {
    fake.script({ kind: 'status', status: 429, retryAfterS: 30 });
    const { out, elapsed } = await run({ timeoutMs: 400 });
    expect(out).toMatchObject({ ok: false, reason: 'error', attempts: 1 });
    expect(elapsed).toBeLessThan(200);
    expect(await settledCount()).toBe(1);
  });
});

describe('runLlm: one deadline', () => {
  it('a first byte later than timeoutMs → timeout at ~timeoutMs, and the request is cancelled', async () => {
    fake.script({ kind: 'answer', firstByteDelayMs: 2000 });
    const { out, elapsed } = await run({ timeoutMs: 300 });
    expect(out).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(500);
    await sleep(100);
    expect(fake.requests[0]?.closedByClient).toBe(true);
    expect(fake.requests).toHaveLength(1);
  });

  it('a stream slower than the deadline → timeout even though text had started', async () => {
    fake.script({ kind: 'answer', text: 'abcdefgh', chunkSize: 2, delayMs: 200 });
    const { out, elapsed } = await run({ timeoutMs: 350 });
    expect(out).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
    expect(elapsed).toBeLessThan(550);
  });

  it('the deadline passing during a backoff → timeout, total time bounded by the deadline', async () => {
    fake.setDefault({ kind: 'status', status: 500 });
    const { out, elapsed } = await run({ timeoutMs: 400, minBackoffMs: 5000 });
    expect(out).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
    expect(elapsed).toBeGreaterThanOrEqual(395);
    expect(elapsed).toBeLessThan(600);
    expect(await settledCount()).toBe(1);
  });

  it('covers every attempt: a 500, then a slow second attempt → timeout at the one deadline', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'answer', firstByteDelayMs: 2000 });
    const { out, elapsed } = await run({ timeoutMs: 500, minBackoffMs: 50 });
    expect(out).toMatchObject({ ok: false, reason: 'timeout', attempts: 2 });
    expect(elapsed).toBeLessThan(700);
  });
});

describe('runLlm: caller abort', () => {
  it('aborting mid-stream → aborted (not timeout, not error)', async () => {
    fake.script({ kind: 'answer', text: 'abcdefgh', chunkSize: 2, delayMs: 1000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const { out, elapsed } = await run({ signal: ac.signal, timeoutMs: 5000 });
    expect(out).toMatchObject({ ok: false, reason: 'aborted', attempts: 1 });
    expect(elapsed).toBeLessThan(600);
  });

  it('aborting during a backoff → aborted, no further request', async () => {
    fake.setDefault({ kind: 'status', status: 500 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const { out, elapsed } = await run({ signal: ac.signal, minBackoffMs: 5000 });
    expect(out).toMatchObject({ ok: false, reason: 'aborted', attempts: 1 });
    expect(elapsed).toBeLessThan(500);
    expect(await settledCount()).toBe(1);
  });

  it('an already aborted signal → aborted without any request', async () => {
    const { out } = await run({ signal: AbortSignal.abort() });
    expect(out).toMatchObject({ ok: false, reason: 'aborted', attempts: 0 });
    expect(await settledCount()).toBe(0);
  });
});
