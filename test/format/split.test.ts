import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { graphemesOf, planParts, splitByBytes, utf8Bytes } from '../../src/format/split.js';

const FAMILY = '👨‍👩‍👧‍👦';
const HINT = '内容较长，回复“继续”查看剩余部分。';
const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' });

const boundaryPieces = ['\n\n', '\n', ' ', '。', '. ', '，', '”', '.', FAMILY, '🇨🇳', 'e\u0301', '中文', '\r\n'];
const richText = fc
  .array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom(...boundaryPieces)), { maxLength: 60 })
  .map((pieces) => pieces.join(''));
const anyText = fc.oneof(richText, fc.string({ unit: 'binary', maxLength: 200 }));

/** Asserts the parts are consecutive slices of `text`, separated only by whitespace. */
function expectSlicesOf(text: string, parts: readonly string[]): void {
  let cursor = 0;
  for (const part of parts) {
    while (!text.startsWith(part, cursor) && /\s/.test(text[cursor] ?? '')) cursor++;
    expect(text.startsWith(part, cursor), `part not found at ${cursor}: ${JSON.stringify(part)}`).toBe(true);
    cursor += part.length;
  }
  expect(text.slice(cursor).trim()).toBe('');
}

describe('utf8Bytes', () => {
  it('counts UTF-8 bytes, not UTF-16 units', () => {
    expect(utf8Bytes('')).toBe(0);
    expect(utf8Bytes('a')).toBe(1);
    expect(utf8Bytes('é')).toBe(2);
    expect(utf8Bytes('中')).toBe(3);
    expect(utf8Bytes('😀')).toBe(4);
    expect(utf8Bytes(FAMILY)).toBe(25);
  });
});

describe('splitByBytes', () => {
  it('keeps short text whole and returns nothing for blank text', () => {
    expect(splitByBytes('  你好  ', 2048)).toEqual(['你好']);
    expect(splitByBytes(' \n\n ', 2048)).toEqual([]);
    expect(splitByBytes('', 4)).toEqual([]);
  });

  it('rejects limits below one code point', () => {
    expect(() => splitByBytes('a', 3)).toThrow(RangeError);
    expect(() => splitByBytes('a', 4.5)).toThrow(RangeError);
    expect(() => splitByBytes('a', Number.NaN)).toThrow(RangeError);
  });

  it('cuts 700 CJK characters (2100 bytes) at a character boundary', () => {
    const parts = splitByBytes('中'.repeat(700), 2048);
    expect(parts).toEqual(['中'.repeat(682), '中'.repeat(18)]);
    expect(utf8Bytes(parts[0] ?? '')).toBe(2046);
  });

  it('does not split a 4-byte emoji straddling the limit', () => {
    expect(splitByBytes(`${'a'.repeat(2046)}😀b`, 2048)).toEqual(['a'.repeat(2046), '😀b']);
  });

  it('keeps a ZWJ family, a flag and a combining sequence whole', () => {
    expect(splitByBytes(`${'a'.repeat(2040)}${FAMILY}b`, 2048)).toEqual(['a'.repeat(2040), `${FAMILY}b`]);
    expect(splitByBytes(`${'a'.repeat(2045)}🇨🇳b`, 2048)).toEqual(['a'.repeat(2045), '🇨🇳b']);
    expect(splitByBytes(`${'a'.repeat(2046)}e\u0301b`, 2048)).toEqual(['a'.repeat(2046), 'e\u0301b']);
  });

  it('falls back to code points for a grapheme larger than the limit', () => {
    const mark = '\u0301';
    expect(splitByBytes(`e${mark.repeat(10)}`, 8)).toEqual([`e${mark.repeat(3)}`, mark.repeat(4), mark.repeat(3)]);
  });

  it('keeps graphemes whole across long texts (segmented in windows)', () => {
    const flags = '🇨🇳'.repeat(1500);
    expect(splitByBytes(`a${flags}`, 8)).toEqual(['a', ...Array.from({ length: 1500 }, () => '🇨🇳')]);
    const families = `${'b'.repeat(4093)}${FAMILY.repeat(3)}`;
    expect(splitByBytes(families, 25).slice(-3)).toEqual([FAMILY, FAMILY, FAMILY]);
    const combining = `x${'e\u0301'.repeat(3000)}`;
    const pairs = Array.from({ length: 1499 }, () => 'e\u0301e\u0301');
    expect(splitByBytes(combining, 6)).toEqual(['xe\u0301', ...pairs, 'e\u0301']);
  });

  it('splits a 900,000-byte text quickly', () => {
    const started = performance.now();
    const parts = splitByBytes('中文内容，测试速度。'.repeat(30000), 2048);
    // 68 sentences (2,040 bytes) per part: the last 。 in reach.
    expect(parts).toHaveLength(442);
    expect(parts[0]).toBe('中文内容，测试速度。'.repeat(68));
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('prefers a paragraph break over a later sentence end', () => {
    const text = `${'a'.repeat(60)}\n\n${'b'.repeat(20)}. ${'c'.repeat(50)}`;
    expect(splitByBytes(text, 100)).toEqual(['a'.repeat(60), `${'b'.repeat(20)}. ${'c'.repeat(50)}`]);
  });

  it('prefers a line break over a later sentence end', () => {
    expect(splitByBytes(`${'甲'.repeat(10)}\n${'乙'.repeat(3)}。${'丙'.repeat(10)}`, 60)).toEqual([
      '甲'.repeat(10),
      `${'乙'.repeat(3)}。${'丙'.repeat(10)}`,
    ]);
  });

  it('cuts after 。 and its closing quote rather than mid-sentence', () => {
    expect(splitByBytes(`${'甲'.repeat(20)}。${'乙'.repeat(20)}`, 90)).toEqual([`${'甲'.repeat(20)}。`, '乙'.repeat(20)]);
    expect(splitByBytes(`他说：“${'好'.repeat(15)}。”${'乙'.repeat(20)}`, 90)).toEqual([
      `他说：“${'好'.repeat(15)}。”`,
      '乙'.repeat(20),
    ]);
  });

  it('treats a full stop as a sentence end only before whitespace', () => {
    expect(splitByBytes('ab3.14cdefgh', 10)).toEqual(['ab3.14cdef', 'gh']);
    expect(splitByBytes('abcdef. ghij', 10)).toEqual(['abcdef.', 'ghij']);
  });

  it('falls back to a clause mark, then to a space', () => {
    expect(splitByBytes('你好。世界，今天天气不错。我们去公园吧', 30)).toEqual(['你好。世界，', '今天天气不错。', '我们去公园吧']);
    expect(splitByBytes('hello big world', 12)).toEqual(['hello big', 'world']);
  });

  it('takes a boundary in the first half only when the second half has none', () => {
    expect(splitByBytes(`Hi. ${'x'.repeat(100)}`, 50)).toEqual(['Hi.', 'x'.repeat(50), 'x'.repeat(50)]);
  });

  it('drops whitespace at cuts and keeps inner whitespace', () => {
    expect(splitByBytes('  一 二\n\n \n三  四  ', 9)).toEqual(['一 二', '三  四']);
  });

  it('property: parts fit, are non-empty, trimmed, and are the text in order', () => {
    fc.assert(
      fc.property(anyText, fc.integer({ min: 4, max: 300 }), (text, maxBytes) => {
        const parts = splitByBytes(text, maxBytes);
        for (const part of parts) {
          expect(utf8Bytes(part)).toBeLessThanOrEqual(maxBytes);
          const segments = [...graphemes.segment(part)].map((s) => s.segment);
          expect(segments.length).toBeGreaterThan(0);
          expect(segments[0]).not.toMatch(/^\s+$/u);
          expect(segments[segments.length - 1]).not.toMatch(/^\s+$/u);
        }
        expectSlicesOf(text, parts);
        expect(parts.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
      }),
      { numRuns: 300 },
    );
  });

  it('property: graphemes that fit are never split', () => {
    fc.assert(
      fc.property(richText, fc.integer({ min: 64, max: 300 }), (text, maxBytes) => {
        const whole = [...graphemes.segment(text)].map((s) => s.segment).filter((g) => !/^\s+$/u.test(g));
        const fromParts = splitByBytes(text, maxBytes).flatMap((part) => [...graphemes.segment(part)].map((s) => s.segment));
        expect(fromParts.filter((g) => !/^\s+$/u.test(g))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe('planParts', () => {
  const paragraph = (i: number): string => `第${String(i).padStart(2, '0')}段：${'这是一段模拟大模型回答的文字，'.repeat(17)}完。`;
  const paragraphs = Array.from({ length: 12 }, (_, i) => paragraph(i + 1));
  const answer = paragraphs.join('\n\n');

  it('sends a 9,000-byte answer as 4 parts plus a hinted fifth and keeps the rest', () => {
    expect(utf8Bytes(answer)).toBeGreaterThan(9000);
    const { parts, rest } = planParts(answer, { maxBytes: 2048, maxParts: 5, hint: HINT });
    expect(parts).toHaveLength(5);
    for (const part of parts) expect(utf8Bytes(part)).toBeLessThanOrEqual(2048);
    const pair = (i: number): string => `${paragraphs[i]}\n\n${paragraphs[i + 1]}`;
    expect(parts.slice(0, 4)).toEqual([pair(0), pair(2), pair(4), pair(6)]);
    expect(parts[4]).toBe(`${pair(8)}\n\n${HINT}`);
    expect(rest).toBe(pair(10));
    const content = [...parts.slice(0, 4), (parts[4] ?? '').slice(0, -`\n\n${HINT}`.length), rest].join('\n\n');
    expect(content).toBe(answer);
  });

  it('fills the hinted part only up to maxBytes minus the hint', () => {
    const { parts, rest } = planParts('中'.repeat(100), { maxBytes: 30, maxParts: 2, hint: '回复继续' });
    // 30 − utf8Bytes('\n\n回复继续') = 16 bytes → 5 characters before the hint.
    expect(parts).toEqual(['中'.repeat(10), `${'中'.repeat(5)}\n\n回复继续`]);
    expect(rest).toBe('中'.repeat(85));
  });

  it('returns every part and no rest when the answer fits the message budget', () => {
    expect(planParts(paragraphs.slice(0, 2).join('\n\n'), { maxBytes: 2048, maxParts: 5, hint: HINT })).toEqual({
      parts: [paragraphs.slice(0, 2).join('\n\n')],
      rest: null,
    });
    expect(planParts('', { maxBytes: 2048, maxParts: 5, hint: HINT })).toEqual({ parts: [], rest: null });
  });

  it('rejects a hint that leaves no room, and bad limits', () => {
    expect(() => planParts('a', { maxBytes: 10, maxParts: 5, hint: '继续继' })).toThrow(RangeError);
    expect(() => planParts('a', { maxBytes: 2048, maxParts: 0, hint: HINT })).toThrow(RangeError);
    expect(() => planParts('a', { maxBytes: 2, maxParts: 5, hint: '' })).toThrow(RangeError);
  });

  it('property: parts fit, at most maxParts, and parts plus rest are the text in order', () => {
    fc.assert(
      fc.property(richText, fc.integer({ min: 20, max: 200 }), fc.integer({ min: 1, max: 5 }), (text, maxBytes, maxParts) => {
        const hint = '回复继续';
        const { parts, rest } = planParts(text, { maxBytes, maxParts, hint });
        expect(parts.length).toBeLessThanOrEqual(maxParts);
        for (const part of parts) expect(utf8Bytes(part)).toBeLessThanOrEqual(maxBytes);
        if (rest === null) {
          expect(parts).toEqual(splitByBytes(text, maxBytes));
          return;
        }
        expect(rest).not.toBe('');
        expect(parts).toHaveLength(maxParts);
        expect(parts.slice(0, -1)).toEqual(splitByBytes(text, maxBytes).slice(0, maxParts - 1));
        const last = parts[parts.length - 1] ?? '';
        expect(last.endsWith(`\n\n${hint}`)).toBe(true);
        const body = last.slice(0, -`\n\n${hint}`.length);
        expectSlicesOf(text, [...parts.slice(0, -1), ...(body === '' ? [] : [body]), rest]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('graphemesOf: the fast path for simple code units agrees with Intl.Segmenter', () => {
  // Pieces that sit next to simple units and change where breaks fall: Prepend (U+0600), Extend after ASCII and
  // CJK (U+0301, U+302A), keycaps, half-width voiced marks, skin tones, flags, Hangul jamo, ZWJ, lone CR and LF.
  const tricky = ['\u0600', '\u0301', 'a\u0301', '中\u302a', '1\ufe0f\u20e3', 'ｶﾞ', '\uff9e', '👍🏽', '🇨🇳', '🇨', 'ᄀ가', '\u200d', '\r', '\n', '\r\n', 'x', '中', '。', ' ', '\u3000', 'Ａ'];
  const mixed = fc.array(fc.oneof(fc.constantFrom(...tricky), fc.string({ unit: 'grapheme', maxLength: 4 })), { maxLength: 80 }).map((p) => p.join(''));
  it('property: the same segments at the same offsets', () => {
    fc.assert(
      fc.property(fc.oneof(mixed, fc.string({ unit: 'binary', maxLength: 100 })), (text) => {
        const ours = [...graphemesOf(text)];
        const theirs = [...graphemes.segment(text)].map((s) => ({ segment: s.segment, index: s.index }));
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 2000 },
    );
  });
});
