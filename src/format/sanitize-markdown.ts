/**
 * Markdown for a surface that renders it (the WeCom smart bot), with raw HTML taken out: a model (or a prompt
 * injection through a customer's page) must not place tags, comments or script-like markup in a chat. Fenced code
 * blocks and inline code keep their text as written, since there it is shown, not rendered.
 * Linear in the input: one pass over fences, then regexes without nested quantifiers.
 */
export function sanitizeMarkdown(markdown: string): string {
  const out: string[] = [];
  // Split keeps the fences as separate items: odd indexes are fenced blocks, left as they are.
  const pieces = markdown.split(/(^```[^\n]*\n[\s\S]*?^```[ \t]*$)/m);
  pieces.forEach((piece, i) => out.push(i % 2 === 1 ? piece : stripHtmlOutsideCode(piece)));
  return out.join('');
}

const COMMENT = /<!--[\s\S]*?(?:-->|$)/g;
const TAG = /<\/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,2000})?\/?>/g;

function stripHtmlOutsideCode(text: string): string {
  // Inline code spans (`…`) stay as written; the text between them loses its tags.
  return text
    .split(/(`[^`\n]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(COMMENT, '').replace(TAG, '')))
    .join('');
}
