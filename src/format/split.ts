/**
 * Splits formatted answers into sendable text messages. WeChat limits text by UTF-8 bytes, not characters: a
 * CJK character costs 3 bytes, most emoji 4, a ZWJ family 25. We never cut inside a grapheme (a half emoji
 * renders as U+FFFD) and prefer cuts a reader would make: paragraph, line, sentence, clause.
 */

/** WeCom kf `send_msg` `text.content` limit, in UTF-8 bytes (docs/protocols.md kf §3.1). */
export const KF_TEXT_MAX_BYTES = 2048;
/** Official Account customer-service text part limit, in UTF-8 bytes (the API rejects text near 2048). */
export const OA_TEXT_MAX_BYTES = 2000;
/** kf messages allowed per customer message: 4 content parts plus a fifth carrying the continue hint. */
export const KF_MAX_PARTS = 5;

const MIN_BYTES = 4; // the largest code point: the code-point fallback must always make progress
const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' });
const SEGMENT_WINDOW = 256; // UTF-16 units; measured fastest on Node 20 (128–512 are within 10%)

const SENTENCE_MARKS = new Set(['。', '！', '？', '!', '?', '；', ';']);
const CLOSERS = new Set(['”', '’', '"', "'", '）', ')', '】', '」', '』', '》', '〉', ']']);
const CLAUSE_MARKS = new Set(['，', '、', '：']);
const Rank = { None: 0, Grapheme: 1, Clause: 2, Sentence: 3, Line: 4, Paragraph: 5 } as const;
type Rank = (typeof Rank)[keyof typeof Rank];

/** A cut-able piece (one grapheme, or one code point of a grapheme too large for any message) at a UTF-16 offset. */
type Unit = { text: string; offset: number; space: boolean };

/** `prefix[i]` = UTF-8 bytes of `units[0..i)`; `limit` = index after the last non-whitespace unit. */
type Prepared = { text: string; units: Unit[]; prefix: number[]; limit: number };

/** UTF-8 length of `s` in bytes (lone surrogates count 3, as they are sent as U+FFFD). */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkBytes(name: string, value: number): void {
  if (!Number.isInteger(value) || value < MIN_BYTES) {
    throw new RangeError(`${name} must be an integer of at least ${MIN_BYTES} bytes, got ${value}`);
  }
}

/**
 * Code units that always stand alone as graphemes between two of their kind (UAX #29): ASCII but CR, the CJK
 * ideographs, CJK symbols and punctuation (less the combining tone marks U+302A–302F) and the full-width forms
 * up to U+FF60. None is Extend, ZWJ, SpacingMark, Prepend, Hangul or a regional indicator, so between two of them
 * there is always a break. Customer and LLM text is mostly these.
 */
function isSimple(c: number): boolean {
  return (
    (c >= 0x20 && c < 0x7f) ||
    c === 0x0a ||
    c === 0x09 ||
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3000 && c <= 0x3029) ||
    (c >= 0x3030 && c <= 0x303f) ||
    (c >= 0xff01 && c <= 0xff60)
  );
}

/**
 * Every grapheme of `text` with its UTF-16 offset, exactly as `Intl.Segmenter` would give them. Runs of simple
 * code units (see isSimple) are cut one per unit without the segmenter: it costs ~1 µs a grapheme, and a
 * customer's 64 KB message must not hold the event loop for 100 ms. Everything else (a simple unit right before
 * a non-simple one included, which may combine with it) goes through the segmenter, from a true break to a true
 * break: a stretch ends only between two simple units that are not CR LF.
 */
export function* graphemesOf(text: string): Generator<{ segment: string; index: number }> {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSimple(c) && (i + 1 === n || isSimple(text.charCodeAt(i + 1)))) {
      yield { segment: text[i] as string, index: i };
      i += 1;
      continue;
    }
    let j = i + 1;
    while (j < n && !(isSimple(text.charCodeAt(j - 1)) && isSimple(text.charCodeAt(j)))) j++;
    for (const g of segmentedOf(text.slice(i, j))) yield { segment: g.segment, index: i + g.index };
    i = j;
  }
}

/**
 * Node 20's segmenter slows down quadratically with input length (80,000 CJK characters take seconds), so we
 * segment bounded windows, dropping each window's possibly truncated last grapheme and restarting there. That is exact because the
 * grapheme rules look back only inside the current cluster, and regional-indicator pairs restart evenly at a break.
 */
function* segmentedOf(text: string): Generator<{ segment: string; index: number }> {
  for (let start = 0, size = SEGMENT_WINDOW; start < text.length; ) {
    let end = Math.min(text.length, start + size);
    if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1] ?? '')) end--; // whole code points only
    const segments = [...graphemes.segment(text.slice(start, end))];
    const keep = end === text.length ? segments.length : segments.length - 1;
    if (keep === 0) {
      size *= 2; // one grapheme longer than the window
      continue;
    }
    for (const { segment, index } of segments.slice(0, keep)) yield { segment, index: start + index };
    start += segments[keep]?.index ?? end - start;
    size = SEGMENT_WINDOW;
  }
}

function prepare(text: string, unitMaxBytes: number): Prepared {
  const units: Unit[] = [];
  const push = (text: string, offset: number) => units.push({ text, offset, space: isSpace(text) });
  for (const { segment, index } of graphemesOf(text)) {
    if (utf8Bytes(segment) <= unitMaxBytes) {
      push(segment, index);
      continue;
    }
    let offset = index;
    for (const codePoint of segment) {
      push(codePoint, offset);
      offset += codePoint.length;
    }
  }
  const prefix = [0];
  for (const unit of units) prefix.push((prefix[prefix.length - 1] ?? 0) + unitBytes(unit.text));
  let limit = units.length;
  while (limit > 0 && units[limit - 1]?.space) limit--;
  return { text, units, prefix, limit };
}

/** `/^\s+$/u` for one grapheme, without the regex for the common one-unit case. */
function isSpace(g: string): boolean {
  if (g.length === 1) {
    const c = g.charCodeAt(0);
    if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  }
  return /^\s+$/u.test(g);
}

/** UTF-8 bytes of one grapheme; one code unit below U+D800 needs no encoder call. */
function unitBytes(g: string): number {
  if (g.length === 1) {
    const c = g.charCodeAt(0);
    if (c < 0xd800) return c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return utf8Bytes(g);
}

const offsetOf = (p: Prepared, index: number): number => p.units[index]?.offset ?? p.text.length;
const bytesBetween = (p: Prepared, from: number, to: number): number => (p.prefix[to] ?? 0) - (p.prefix[from] ?? 0);

function skipSpace(p: Prepared, index: number): number {
  while (index < p.limit && p.units[index]?.space) index++;
  return index;
}

/** How good a cut between units[cut - 1] and units[cut] is; `start` bounds the look-back to the current part. */
function rankCut(p: Prepared, start: number, cut: number): Rank {
  const prev = p.units[cut - 1];
  const next = p.units[cut];
  if (prev === undefined || prev.space) return Rank.None; // inside a whitespace run: its first position stands for it
  if (next !== undefined && (CLOSERS.has(next.text) || SENTENCE_MARKS.has(next.text))) return Rank.Grapheme;
  if (next?.space) {
    const run = p.text.slice(next.offset, offsetOf(p, skipSpace(p, cut)));
    const newlines = run.match(/\r\n|\r|\n/g)?.length ?? 0;
    if (newlines >= 2) return Rank.Paragraph;
    if (newlines === 1) return Rank.Line;
  }
  let mark = cut - 1;
  while (mark > start && CLOSERS.has(p.units[mark]?.text ?? '')) mark--;
  const markText = p.units[mark]?.text ?? '';
  // "3.14" and "example.com" are not sentence ends; a full stop only counts before whitespace.
  if (SENTENCE_MARKS.has(markText) || (markText === '.' && next?.space === true)) return Rank.Sentence;
  if (next?.space || CLAUSE_MARKS.has(prev.text)) return Rank.Clause;
  return Rank.Grapheme;
}

/** Index where the part starting at `start` should end (exclusive), filling at most `budget` bytes. */
function chooseCut(p: Prepared, start: number, budget: number): number {
  let end = start;
  while (end < p.limit && bytesBetween(p, start, end + 1) <= budget) end++;
  if (end === p.limit) return end;
  let secondHalf: { rank: Rank; cut: number } = { rank: Rank.None, cut: end };
  let anywhere = secondHalf;
  // Walking backwards, the first cut found for a rank is the fullest one.
  for (let cut = end; cut > start; cut--) {
    const rank = rankCut(p, start, cut);
    if (rank > anywhere.rank) anywhere = { rank, cut };
    if (rank > secondHalf.rank && bytesBetween(p, start, cut) * 2 >= budget) secondHalf = { rank, cut };
  }
  if (secondHalf.rank >= Rank.Clause) return secondHalf.cut;
  if (anywhere.rank >= Rank.Clause) return anywhere.cut;
  return end;
}

/** A part's text and the unit index where the following part starts. */
type Part = { text: string; next: number };

function takePart(p: Prepared, start: number, budget: number): Part {
  const cut = chooseCut(p, start, budget);
  let last = cut;
  while (last > start && p.units[last - 1]?.space) last--;
  return { text: p.text.slice(offsetOf(p, start), offsetOf(p, last)), next: skipSpace(p, cut) };
}

function takeAll(p: Prepared, budget: number): Part[] {
  const parts: Part[] = [];
  for (let start = skipSpace(p, 0); start < p.limit; start = parts[parts.length - 1]?.next ?? p.limit) {
    parts.push(takePart(p, start, budget));
  }
  return parts;
}

/**
 * Splits `text` into parts of at most `maxBytes` UTF-8 bytes each (bytes, not characters), in order.
 * Cuts fall on grapheme boundaries (code points only for a single grapheme larger than `maxBytes`), preferring
 * a blank line, then a line break, then a sentence end, then a clause mark or space. Each part is filled as far
 * as the best such cut in its second half allows, else the best cut anywhere, else the byte limit.
 * Whitespace at a cut is dropped, parts have no leading/trailing whitespace and are never empty; the parts
 * plus the dropped whitespace are exactly `text`. Returns `[]` for blank text.
 * Use {@link KF_TEXT_MAX_BYTES} (kf `send_msg` text.content ≤ 2048 bytes) or {@link OA_TEXT_MAX_BYTES}.
 * @throws RangeError when `maxBytes` is not an integer ≥ 4 (one code point needs up to 4 bytes).
 */
export function splitByBytes(text: string, maxBytes: number): string[] {
  checkBytes('maxBytes', maxBytes);
  return takeAll(prepare(text, maxBytes), maxBytes).map((part) => part.text);
}

/** Options for {@link planParts}; `maxBytes` is in UTF-8 bytes, `maxParts` counts messages including the hint. */
export type PlanOptions = { maxBytes: number; maxParts: number; hint: string };

/** Messages to send now (`parts`, each ≤ maxBytes bytes) and the text kept for the continue keyword (`rest`). */
export type PartPlan = { parts: string[]; rest: string | null };

/**
 * Plans the messages for one answer under a per-customer-message budget (kf: {@link KF_MAX_PARTS} messages,
 * so at most 4 content parts and a fifth ending in a hint such as `内容较长，回复“继续”查看剩余部分。`).
 * If {@link splitByBytes} yields at most `maxParts` parts they are returned with `rest: null`. Otherwise the
 * first `maxParts − 1` parts are kept, the last part holds as much of the remaining text as fits in
 * `maxBytes − utf8Bytes('\n\n' + hint)` bytes followed by `'\n\n' + hint`, and `rest` is the untouched
 * remaining source text, trimmed, never empty. Every returned part is ≤ `maxBytes` UTF-8 bytes.
 * @throws RangeError when `maxBytes` is not an integer ≥ 4, `maxParts` is not an integer ≥ 1, or the hint
 * leaves fewer than 4 bytes of room in the last part.
 */
export function planParts(text: string, opts: PlanOptions): PartPlan {
  const { maxBytes, maxParts, hint } = opts;
  checkBytes('maxBytes', maxBytes);
  if (!Number.isInteger(maxParts) || maxParts < 1) throw new RangeError(`maxParts must be an integer ≥ 1, got ${maxParts}`);
  const suffix = `\n\n${hint}`;
  const lastBudget = maxBytes - utf8Bytes(suffix);
  if (lastBudget < MIN_BYTES) throw new RangeError(`hint (${utf8Bytes(suffix)} bytes with its separator) does not fit`);
  const prepared = prepare(text, maxBytes);
  const all = takeAll(prepared, maxBytes);
  if (all.length <= maxParts) return { parts: all.map((part) => part.text), rest: null };
  const kept = all.slice(0, maxParts - 1);
  const from = kept[kept.length - 1]?.next ?? 0;
  // The hinted part must take at least one unit of the smaller budget. Its units are the ones already prepared
  // unless a grapheme is larger than that budget (then the remainder is prepared again, cut into code points):
  // preparing the whole text twice doubled the cost of a long answer.
  let unitMax = 0;
  for (let i = from; i < prepared.units.length; i++) unitMax = Math.max(unitMax, bytesBetween(prepared, i, i + 1));
  const remainder = unitMax <= lastBudget ? prepared : prepare(text.slice(offsetOf(prepared, from)), lastBudget);
  const last = takePart(remainder, skipSpace(remainder, remainder === prepared ? from : 0), lastBudget);
  const rest = remainder.text.slice(offsetOf(remainder, last.next), offsetOf(remainder, remainder.limit));
  return { parts: [...kept.map((part) => part.text), last.text + suffix], rest };
}
