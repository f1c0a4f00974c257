import type { ConversationState } from './types.js';

/** One remembered turn. Only plain text: never images, never reasoning (DeepSeek refuses it back with 400). */
export interface HistoryMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** How much history to keep per customer: whole turns (user + assistant) and characters over all of them. */
export interface HistoryLimits {
  maxTurns: number;
  maxChars: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxTurns: 10, maxChars: 6000 };

/**
 * What stands for one customer image in remembered text (WeChat's own label in chat lists). History never holds
 * image bytes; the mark keeps the next turn coherent ("what is in it?" refers to something the model can see was
 * there).
 */
export const IMAGE_MARK = '[图片]';

/**
 * The text to remember for a user turn that came with `imageCount` images: one IMAGE_MARK per image, then the text
 * (`[图片]这个多少钱？`); the text alone when there are none.
 */
export function userTurnText(text: string, imageCount: number): string {
  return IMAGE_MARK.repeat(Math.max(0, imageCount)) + text;
}

/** Reads the history out of a stored state; anything malformed counts as no history. */
export function historyOf(state: ConversationState | null): HistoryMessage[] {
  const h = state?.history;
  if (!Array.isArray(h)) return [];
  return h.filter(
    (m): m is HistoryMessage =>
      !!m && typeof m === 'object' && (m.role === 'user' || m.role === 'assistant') && typeof m.content === 'string',
  );
}

/**
 * Appends one turn and drops the oldest turns until both limits hold (the newest turn is always kept).
 * @returns the new state `{ history }`
 */
export function appendTurn(
  state: ConversationState | null,
  user: string,
  assistant: string,
  limits: HistoryLimits = DEFAULT_HISTORY_LIMITS,
): ConversationState {
  const history = [...historyOf(state), { role: 'user', content: user }, { role: 'assistant', content: assistant }] as HistoryMessage[];
  const chars = (list: HistoryMessage[]) => list.reduce((n, m) => n + m.content.length, 0);
  while (history.length > 2 && (history.length > limits.maxTurns * 2 || chars(history) > limits.maxChars)) {
    history.splice(0, 2);
  }
  return { history };
}
