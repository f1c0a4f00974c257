import { stripReasoning } from '../format/reasoning.js';

/**
 * Turns a provider's raw answer text, as it streams, into `ReplyRequest.onText` snapshots of what the customer may
 * see: the same rule as `stripReasoning` (src/format/reasoning.ts) on the final text, applied to partial text. Leading
 * `<think>`/`<thinking>` blocks (any case, whitespace before them) are hidden, also when a tag is split across
 * chunks; an unclosed block hides everything after it; leading whitespace and a possible start of a tag (`<thi`) are
 * held back until the next text decides. Once visible text has begun, everything after it is visible (like
 * `stripReasoning`, which strips leading blocks only). Every method ends with a snapshot when the visible text changed.
 */
export interface VisibleText {
  /** the raw text grew by `delta` (a stream delta); O(delta) work */
  append(delta: string): void;
  /** the raw text so far is now `raw` (Dify `message_replace`, a Coze answer completed with other text) */
  replace(raw: string): void;
  /** the answer is complete and its raw text is `raw` (the `ReplyResult.text`): the last snapshot is its visible part */
  finish(raw: string): void;
}

const OPEN = /^\s*<think(?:ing)?>/i;
const CLOSE = /<\/think(?:ing)?>/i;
const OPEN_TAGS = ['<think>', '<thinking>'];
/** `</thinking>` minus one: the longest tail of reasoning that can be the start of a closing tag */
const CLOSE_TAIL = '</thinking>'.length - 1;

/**
 * A tracker that calls `onText` with each new visible snapshot; a no-op when `onText` is undefined. Exceptions thrown
 * by `onText` are swallowed: a preview must never fail the answer it previews.
 */
export function trackVisibleText(onText: ((visibleSoFar: string) => void) | undefined): VisibleText {
  if (!onText) return { append: () => undefined, replace: () => undefined, finish: () => undefined };
  // lead: before any visible text (whitespace, a tag start); think: inside a block; visible: the answer has begun.
  let phase: 'lead' | 'think' | 'visible' = 'lead';
  // lead: the undecided head; think: the tail that may hold the start of the closing tag.
  let held = '';
  // Built by appending, never by slicing the raw text: slicing a concatenated string copies it, per delta.
  let visible = '';
  let shown = '';
  const emit = (v: string): void => {
    if (v === shown) return;
    shown = v;
    try {
      onText(v);
    } catch {
      // swallowed (see above)
    }
  };
  const feed = (delta: string): void => {
    if (phase === 'visible') {
      visible += delta;
      return;
    }
    held += delta;
    for (;;) {
      if (phase === 'think') {
        const close = CLOSE.exec(held);
        if (!close) {
          held = held.slice(-CLOSE_TAIL);
          return;
        }
        held = held.slice(close.index + close[0].length);
        phase = 'lead';
      }
      const open = OPEN.exec(held);
      if (open) {
        held = held.slice(open[0].length);
        phase = 'think';
        continue;
      }
      if (undecided(held)) return;
      phase = 'visible';
      visible = held;
      held = '';
      return;
    }
  };
  const current = (): string => (phase === 'visible' ? visible : '');
  return {
    append(delta) {
      if (!delta) return;
      feed(delta);
      emit(current());
    },
    replace(raw) {
      phase = 'lead';
      held = '';
      visible = '';
      feed(raw);
      emit(current());
    },
    finish(raw) {
      emit(stripReasoning(raw) ?? '');
    },
  };
}

/** Whether `head` (no complete opening tag in it) may still turn out to be reasoning: blank, or blank + a tag start. */
function undecided(head: string): boolean {
  const rest = head.replace(/^\s*/, '').toLowerCase();
  return rest === '' || OPEN_TAGS.some((tag) => tag.startsWith(rest));
}
