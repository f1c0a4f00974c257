/** Lower-cases ASCII letters only: Chinese, full-width letters and punctuation compare as they are. */
function foldAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Whether a customer message is one of the keywords (docs/configuration.md "Keywords"): after trimming ASCII and
 * full-width white space it equals an entry; ASCII letters compare case-insensitively; punctuation is not
 * stripped (`重置。` is not `重置`).
 */
export function matchesKeyword(message: string, keywords: readonly string[]): boolean {
  // String#trim covers ASCII white space and U+3000 (the full-width space Chinese keyboards type) in linear time;
  // the anchored regex it replaces backtracked quadratically over a long run of spaces.
  const m = foldAscii(message.trim());
  if (!m) return false;
  return keywords.some((k) => foldAscii(k.trim()) === m);
}
