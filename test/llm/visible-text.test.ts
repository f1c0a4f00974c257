/**
 * The onText snapshot tracker (src/llm/visible-text.ts) against the final-text rule it must agree with
 * (`stripReasoning`, src/format/reasoning.ts), over hand-picked and generated chunkings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stripReasoning } from '../../src/format/reasoning.js';
import { trackVisibleText } from '../../src/llm/visible-text.js';

/** Feeds `chunks` as deltas, then finishes with their concatenation; every snapshot in order. */
function snapshots(chunks: string[]): string[] {
  const seen: string[] = [];
  const v = trackVisibleText((t) => void seen.push(t));
  for (const c of chunks) v.append(c);
  v.finish(chunks.join(''));
  return seen;
}

describe('trackVisibleText', () => {
  it('plain text: one snapshot per delta, each the whole text so far', () => {
    expect(snapshots(['您好', '！我们', '周末营业。'])).toEqual(['您好', '您好！我们', '您好！我们周末营业。']);
  });

  it('a leading think block with both tags split across chunks never shows', () => {
    const seen = snapshots(['<th', 'ink>先想', '想</th', 'ink>\n答', '案']);
    expect(seen).toEqual(['\n答', '\n答案']);
  });

  it('<thinking>, upper case, whitespace before it and several blocks in a row are all hidden', () => {
    expect(snapshots([' \n<THINKING>a</Thinking>', '\n', '<think>b</think>', 'ok'])).toEqual(['ok']);
  });

  it('an unclosed think block hides everything after it, and the end shows nothing (stripReasoning gives null)', () => {
    expect(snapshots(['<think>一直在想', '……还在想'])).toEqual([]);
  });

  it('a possible tag start is held back until the next text decides', () => {
    expect(snapshots(['<', '3 你'])).toEqual(['<3 你']);
    expect(snapshots(['<thi', 'ng>'])).toEqual(['<thing>']);
  });

  it('only leading blocks are reasoning: after visible text has begun a think tag is text, as in stripReasoning', () => {
    const chunks = ['答案', '<think>x</think>'];
    expect(snapshots(chunks).at(-1)).toBe(stripReasoning(chunks.join('')));
    expect(snapshots(chunks)).toEqual(['答案', '答案<think>x</think>']);
  });

  it('whitespace-only text is held while streaming and shown at the end, exactly like the final text', () => {
    expect(snapshots(['  ', '\n'])).toEqual(['  \n']);
  });

  it('replace rewrites the snapshot (Dify message_replace), including back to nothing', () => {
    const seen: string[] = [];
    const v = trackVisibleText((t) => void seen.push(t));
    v.append('违规的');
    v.replace('抱歉。');
    v.replace('<think>');
    v.finish('抱歉，无法回答。');
    expect(seen).toEqual(['违规的', '抱歉。', '', '抱歉，无法回答。']);
  });

  it('finish with a different final text (a workflow output) makes that the last snapshot; an equal one adds none', () => {
    const seen: string[] = [];
    const v = trackVisibleText((t) => void seen.push(t));
    v.append('流式');
    v.finish('流式');
    v.finish('最终输出');
    expect(seen).toEqual(['流式', '最终输出']);
  });

  it('an onText that throws is swallowed', () => {
    const v = trackVisibleText(() => {
      throw new Error('consumer bug');
    });
    expect(() => (v.append('a'), v.replace('b'), v.finish('c'))).not.toThrow();
  });

  it('without onText it does nothing', () => {
    const v = trackVisibleText(undefined);
    expect(() => (v.append('a'), v.finish('a'))).not.toThrow();
  });

  it('a long answer in small deltas stays linear (no copy of the text per delta)', () => {
    const deltas = Array.from({ length: 200_000 }, (_, i) => `第${i % 10}条`);
    let calls = 0;
    let last = '';
    const v = trackVisibleText((t) => void ((calls += 1), (last = t)));
    const t0 = performance.now();
    v.append('<think>推理</think>');
    for (const d of deltas) v.append(d);
    v.finish(`<think>推理</think>${deltas.join('')}`);
    expect(calls).toBe(deltas.length);
    expect(last).toBe(deltas.join(''));
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('property: for any text and any chunking, every snapshot is a prefix of the final visible text, which is the last', () => {
    const piece = fc.constantFrom('<think>', '</think>', '<thinking>', '</THINKING>', '<', '/', 'think', 'ing', '>', ' ', '\n', 'a', '答', '<thi', '</th');
    const split = fc.array(piece, { maxLength: 30 }).chain((pieces) => {
      const text = pieces.join('');
      return fc.tuple(fc.constant(text), fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 10 }));
    });
    fc.assert(
      fc.property(split, ([text, cuts]) => {
        const at = [0, ...cuts.filter((c) => c < text.length).sort((x, y) => x - y), text.length];
        const chunks = at.slice(1).map((end, i) => text.slice(at[i], end));
        const seen = snapshots(chunks);
        const final = stripReasoning(text) ?? '';
        for (const s of seen) expect(final.startsWith(s)).toBe(true);
        expect(seen.at(-1) ?? '').toBe(final);
        // no two equal snapshots in a row: every call is a visible change
        for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
      }),
      { numRuns: 2000 },
    );
  });
});
