/** Whitespace clean-up and length caps for text we hand to the LLM. */

/**
 * Collapses runs of spaces, tabs, NBSP and ideographic spaces (U+3000) to one space, trims every line, keeps at
 * most one blank line between paragraphs, and trims the whole. Paragraph breaks survive: the LLM reads structure.
 */
export function collapseWhitespace(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * The first `maxChars` UTF-16 code units of `text`, never ending on half a surrogate pair (emoji, rare CJK).
 * @param maxChars ≥ 0
 * @returns the capped text and whether anything was cut
 */
export function capChars(text: string, maxChars: number): { text: string; truncated: boolean } {
  if (text.length <= maxChars) return { text, truncated: false };
  let end = Math.max(0, Math.floor(maxChars));
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: text.slice(0, end), truncated: true };
}
