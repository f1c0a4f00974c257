/**
 * An image inside converted answer text. markdown `![alt](url)` becomes this marker so the part planner can send
 * the image as its own message in its place (kf) or write it as text (`alt (url)`) where images cannot be sent.
 * The marker uses Private Use Area characters, which {@link stripMarkerChars} removes from LLM text beforehand,
 * so an answer cannot forge one.
 */
const OPEN = '\uE000';
const SEP = '\uE001';
const CLOSE = '\uE002';
const MARKER = /\uE000([^\uE000-\uE002]*)\uE001([^\uE000-\uE002]*)\uE002/g;

export interface ImageRef {
  url: string;
  alt: string;
}

/** The marker for one image: `url` an http(s) URL, `alt` its text (marker characters removed). */
export function imageMarker(url: string, alt: string): string {
  return `${OPEN}${url}${SEP}${alt.replace(/[\uE000-\uE002]/g, '')}${CLOSE}`;
}

/** Removes the marker characters from untrusted text (an LLM answer) before conversion. */
export function stripMarkerChars(text: string): string {
  return text.replace(/[\uE000-\uE002]/g, '');
}

/** How an image reads as text: `alt (url)`, or the url alone without alt. */
export function imageAsText(ref: ImageRef): string {
  const label = ref.alt.trim();
  return label === '' ? ref.url : `${label} (${ref.url})`;
}

/** Replaces every marker with {@link imageAsText}. */
export function markersToText(text: string): string {
  return text.replace(MARKER, (_, url: string, alt: string) => imageAsText({ url, alt }));
}

/** The image a part stands for, when the whole part is one marker (see `planReplyParts`), else null. */
export function imagePartOf(part: string): ImageRef | null {
  const m = /^\uE000([^\uE000-\uE002]*)\uE001([^\uE000-\uE002]*)\uE002$/.exec(part);
  return m ? { url: m[1] as string, alt: m[2] as string } : null;
}

/** Text and images in their order; text pieces are trimmed and never empty. */
export function splitAtImages(text: string): Array<{ text: string } | { image: ImageRef; marker: string }> {
  const out: Array<{ text: string } | { image: ImageRef; marker: string }> = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    const before = text.slice(last, m.index).trim();
    if (before) out.push({ text: before });
    out.push({ image: { url: m[1] as string, alt: m[2] as string }, marker: m[0] });
    last = (m.index ?? 0) + m[0].length;
  }
  const after = text.slice(last).trim();
  if (after) out.push({ text: after });
  return out;
}
