import { stripMarkerChars } from './image-marker.js';
import { markdownToText } from './markdown-to-text.js';
import { sanitizeMarkdown } from './sanitize-markdown.js';
import { planPartsWithImages } from './plan-with-images.js';

/** An answer to format for WeChat and split into parts. */
export interface FormatInput {
  text: string;
  /**
   * `markdown`: the agent answers in markdown (→ WeChat text, images as markers when `imageMarkers`); `plain`: the
   * agent's words as they are (marker characters stripped, so no answer can forge an image); `formatted`: text this
   * function produced before (the kept rest of a long answer), split only
   */
  source: 'markdown' | 'plain' | 'formatted';
  /** the channel sends `![alt](url)` images as image messages (kf, OA active) */
  imageMarkers: boolean;
  /** UTF-8 bytes per message */
  maxBytes: number;
  /** messages per customer message, the hint's part included */
  maxParts: number;
  /** the continue hint that ends the last part when the answer does not fit */
  hint: string;
  /**
   * the channel renders markdown (smart bot): a `markdown` answer keeps its markdown, raw HTML taken out
   * (sanitize-markdown.ts), instead of becoming WeChat text
   */
  keepMarkdown?: boolean;
}

/** The formatted answer: its whole text, the parts to send now and the rest kept for the continue keyword. */
export interface FormattedAnswer {
  /** '' when nothing visible is left (the caller answers with its fallback) */
  text: string;
  parts: string[];
  rest: string | null;
}

/**
 * Answers longer than this (UTF-16 units) are formatted in the extraction pool's worker thread: markdown-it and the
 * grapheme splitter cost up to ~3 µs a character on adversarial text (a customer's 64 KB message echoed, a
 * prompt-injected answer of `![` runs), and nothing a customer controls may hold the event loop for 50 ms.
 * Below it the work takes a few ms at most and a thread hop would only add latency.
 */
export const LONG_ANSWER_CHARS = 2048;

/**
 * Converts and splits one answer. Pure and synchronous: runs on the event loop for short answers and in a worker
 * thread for long ones (extract-worker.ts).
 * @throws RangeError as planParts when the limits leave no room (a configuration error)
 */
export function formatAnswer(i: FormatInput): FormattedAnswer {
  const converted =
    i.source === 'markdown'
      ? i.keepMarkdown
        ? sanitizeMarkdown(stripMarkerChars(i.text))
        : markdownToText(i.text, { imageMarkers: i.imageMarkers })
      : i.source === 'plain'
        ? stripMarkerChars(i.text)
        : i.text;
  const text = converted.trim();
  if (!text) return { text: '', parts: [], rest: null };
  const { parts, rest } = planPartsWithImages(text, { maxBytes: i.maxBytes, maxParts: i.maxParts, hint: i.hint });
  return { text, parts, rest };
}
