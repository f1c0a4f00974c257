/** ASCII white space and the full-width (ideographic) space that Chinese keyboards type. */
const EDGE_SPACE = /^[\s\u3000]+|[\s\u3000]+$/g;

/** Lower-cases ASCII letters only: Chinese, full-width letters and punctuation compare as they are. */
function foldAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Whether a customer message is one of the keywords (interface.md "Keywords"): after trimming ASCII and
 * full-width white space it equals an entry; ASCII letters compare case-insensitively; punctuation is not
 * stripped (`重置。` is not `重置`).
 */
export function matchesKeyword(message: string, keywords: readonly string[]): boolean {
  const m = foldAscii(message.replace(EDGE_SPACE, ''));
  if (!m) return false;
  return keywords.some((k) => foldAscii(k.replace(EDGE_SPACE, '')) === m);
}
