import { splitAtImages } from './image-marker.js';
import { planParts, splitByBytes, utf8Bytes, type PartPlan, type PlanOptions } from './split.js';

/**
 * {@link planParts} for text that may hold image markers (image-marker.ts): every image becomes a part of its
 * own, exactly where it stood between the text parts, and counts against `maxParts` like a text message (kf: 5
 * messages per customer message). Text without markers is planned exactly as by `planParts`.
 * Over budget: the first `maxParts − 1` parts are sent, the last part is the following text (as much as fits)
 * ending with the hint — or the hint alone when an image comes next — and `rest` is everything after, markers
 * included, so the continue keyword sends the images in their places too.
 * @throws RangeError as `planParts`
 */
export function planPartsWithImages(text: string, opts: PlanOptions): PartPlan {
  const pieces = splitAtImages(text);
  if (!pieces.some((p) => 'image' in p)) return planParts(text, opts);
  const seq = pieces.flatMap((p) => ('image' in p ? [p.marker] : splitByBytes(p.text, opts.maxBytes)));
  if (seq.length <= opts.maxParts) return { parts: seq, rest: null };
  const kept = seq.slice(0, opts.maxParts - 1);
  const remaining = seq.slice(opts.maxParts - 1);
  const firstImage = remaining.findIndex((p) => splitAtImages(p).some((x) => 'image' in x));
  if (firstImage === 0) {
    return { parts: [...kept, opts.hint], rest: remaining.join('\n\n') };
  }
  const textHead = (firstImage < 0 ? remaining : remaining.slice(0, firstImage)).join('\n\n');
  const tail = firstImage < 0 ? [] : remaining.slice(firstImage);
  // The hinted part takes as much of the text as fits beside the hint; the rest of it waits with the images.
  const suffix = `\n\n${opts.hint}`;
  const chunks = splitByBytes(textHead, opts.maxBytes - utf8Bytes(suffix));
  const rest = [...chunks.slice(1), ...tail].join('\n\n');
  return { parts: [...kept, `${chunks[0] ?? ''}${suffix}`.trim()], rest: rest || null };
}
