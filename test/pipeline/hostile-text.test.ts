/**
 * A customer's text is hostile input: whatever 64 KB they send (runs of white space, markdown delimiters, brackets,
 * newlines, emoji) is matched against the keywords in linear time, and answered by `echo` (split into WeChat parts)
 * or by an LLM that repeats it back as markdown without the event loop stalling past 50 ms: answers longer than
 * LONG_ANSWER_CHARS are formatted in the extraction pool's worker thread, shorter ones take a few ms inline.
 * Before: trimming 60,000 spaces with an anchored regex took 7.9 s; echoing 64 KB held the loop 100–200 ms and
 * converting 64 KB of `![` from markdown 190 ms.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { formatAnswer, LONG_ANSWER_CHARS } from '../../src/format/format-answer.js';
import { KF_MAX_PARTS, KF_TEXT_MAX_BYTES } from '../../src/format/split.js';
import { createEchoAdapter } from '../../src/llm/echo.js';
import type { LlmAdapter } from '../../src/llm/types.js';
import { createExtractPool } from '../../src/media/extract-pool.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createAnswerer } from '../../src/pipeline/answer.js';
import { matchesKeyword } from '../../src/pipeline/keywords.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { LogSink } from '../helpers/harness.js';

const N = 64 * 1024;
const TEXTS: Record<string, string> = {
  'spaces then a letter': `${' '.repeat(N)}x`,
  'a letter then spaces': `x${' '.repeat(N)}`,
  'full-width spaces around a keyword': `${'\u3000'.repeat(N / 2)}重置${'\u3000'.repeat(N / 2)}`,
  'mixed white space': ' \t\u3000\n'.repeat(N / 4) + 'x',
  newlines: '\n'.repeat(N),
  'asterisks': '*'.repeat(N),
  'underscores and asterisks': '_*'.repeat(N / 2),
  'open brackets': '['.repeat(N),
  'image openers': '!['.repeat(N / 2),
  'half image syntax': '![a]('.repeat(N / 5),
  backticks: '`'.repeat(N),
  'headings': '#'.repeat(N),
  'list markers': '- '.repeat(N / 2),
  'quote markers': '> '.repeat(N / 2),
  'html-ish': '<a '.repeat(N / 3),
  'sentence ends': '。'.repeat(N),
  'emoji': '😀'.repeat(N / 2),
  'no break at all': 'x'.repeat(N),
};

async function timed<T>(fn: () => T | Promise<T>): Promise<{ value: T; ms: number; loopMaxMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = performance.now();
  const value = await fn();
  const ms = performance.now() - started;
  // Let the monitor see the loop again after the synchronous work.
  await new Promise((r) => setTimeout(r, 20));
  delay.disable();
  return { value, ms, loopMaxMs: delay.max / 1e6 };
}

describe('a customer text of 64 KB never holds the event loop', () => {
  const store = createMemoryStore();
  const pool = createExtractPool();
  afterAll(async () => pool.close());
  const parrot: LlmAdapter = {
    provider: 'openai',
    answersInMarkdown: true,
    acceptsImages: false,
    reply: async (req) => ({ text: req.text, state: null, usage: null, finishReason: 'stop' }),
  };
  const answererFor = (adapter: LlmAdapter) =>
    createAnswerer({
      store,
      adapter,
      agent: adapter.provider,
      timeoutMs: 5000,
      replies: { onTimeout: 't', onError: 'e', onReset: 'r', unsupported: 'u', stillThinking: 's', rateLimited: 'l', onHandoff: 'h', welcome: null },
      keywords: { reset: ['重置', 'reset'], continue: ['继续'] },
      metrics: createMetrics({ defaultMetrics: false }),
      log: createLogger('silent', new LogSink()),
      formatLong: (input, signal) => pool.format(input, signal),
    });
  const echo = answererFor(createEchoAdapter());
  const llm = answererFor(parrot);
  const limits = { maxBytes: KF_TEXT_MAX_BYTES, maxParts: KF_MAX_PARTS, images: true };
  const ask = (a: typeof echo, customer: string, text: string) =>
    a.answer({ customer, text, traceId: 'm', signal: new AbortController().signal, limits });

  for (const [name, text] of Object.entries(TEXTS)) {
    it(name, async () => {
      const keyword = await timed(() => matchesKeyword(text, ['重置', 'reset', '继续', '人工']));
      expect(keyword.value).toBe(name === 'full-width spaces around a keyword');
      expect(keyword.ms, `keywords: ${keyword.ms.toFixed(1)} ms`).toBeLessThan(50);
      const echoed = await timed(() => ask(echo, `kf:a:echo:${name}`, text));
      const parroted = await timed(() => ask(llm, `kf:a:llm:${name}`, text));
      // An answer (or, for a text that renders to nothing such as blank lines, the fallback), never a thrown error.
      for (const a of [echoed, parroted]) expect(a.value.parts.length).toBeGreaterThan(0);
      for (const [step, t] of Object.entries({ keyword, echoed, parroted })) {
        expect(t.loopMaxMs, `${step}: event loop blocked ${t.loopMaxMs.toFixed(1)} ms`).toBeLessThan(60);
        expect(t.ms, `${step}: ${t.ms.toFixed(0)} ms`).toBeLessThan(3000);
      }
    });
  }

  it(`the inline path (answers up to ${LONG_ANSWER_CHARS} characters) costs a few ms of CPU on the same texts`, () => {
    const run = (text: string, source: 'markdown' | 'plain') =>
      formatAnswer({ text: text.slice(0, LONG_ANSWER_CHARS), source, imageMarkers: true, maxBytes: KF_TEXT_MAX_BYTES, maxParts: KF_MAX_PARTS, hint: '…' });
    // Warm the converters once, as a running server has (a cold markdown-it costs the first calls tens of ms more),
    // and measure CPU time, not wall time: the suite shares two cores with other test files.
    for (const text of Object.values(TEXTS)) for (const source of ['markdown', 'plain'] as const) run(text, source);
    // The median of five: one call may still meet a JIT tier-up or a GC pause (~40 ms once, in a fresh process).
    for (const [name, text] of Object.entries(TEXTS)) {
      for (const source of ['markdown', 'plain'] as const) {
        const runs = Array.from({ length: 5 }, () => {
          const started = process.cpuUsage();
          run(text, source);
          const used = process.cpuUsage(started);
          return (used.user + used.system) / 1000;
        }).sort((a, b) => a - b);
        const ms = runs[2]!;
        expect(ms, `${name} (${source}): ${ms.toFixed(1)} ms of CPU (median of 5)`).toBeLessThan(30);
      }
    }
  });
});
