import { createHash } from 'node:crypto';
import type { MediaTools } from '../../pipeline/media-tools.js';
import type { StreamImage } from './streams.js';

/** A finished stream frame carries at most this many images (wecom-aibot-protocol.md §4). */
export const MAX_STREAM_IMAGES = 10;
/** Each ≤ 10 MB before base64. */
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
// Bounded pieces only: a hostile answer of `![` runs must stay linear.
const MD_IMAGE = /!\[([^\]\n]{0,200})\]\((https?:\/\/[^\s)]{1,2000})(?:\s+"[^"\n]{0,200}")?\)/g;

/**
 * The answer's markdown images (`![alt](https://…)`) as the final frame's `msg_item` (base64 + MD5 of the raw
 * bytes, JPG or PNG, ≤ 10), fetched through `media.fetchImage` (ANSWER_IMAGE_ALLOW_HOSTS, MEDIA_MAX_BYTES). Each
 * image that goes along leaves the text (its alt stays, if any); one that cannot be had (refused host, not JPG/PNG,
 * too large, past the tenth) stays a link, so nothing the agent meant to show is lost.
 * @returns the text to show and the images
 * @throws the signal's reason when aborted
 */
export async function attachAnswerImages(content: string, media: MediaTools, signal: AbortSignal): Promise<{ content: string; images: StreamImage[] }> {
  const found = [...content.matchAll(MD_IMAGE)].slice(0, MAX_STREAM_IMAGES);
  if (found.length === 0) return { content, images: [] };
  const fetched = await Promise.all(found.map((m) => media.fetchImage(m[2] as string, signal)));
  const images: StreamImage[] = [];
  const replaced = new Map<string, string>();
  found.forEach((m, i) => {
    const image = fetched[i];
    const alt = (m[1] ?? '').trim();
    const ok = image && (image.mime === 'image/jpeg' || image.mime === 'image/png') && image.data.length <= MAX_IMAGE_BYTES;
    if (ok) {
      images.push({ msgtype: 'image', image: { base64: image.data.toString('base64'), md5: createHash('md5').update(image.data).digest('hex') } });
      replaced.set(m[0], alt);
    } else {
      replaced.set(m[0], `[${alt || '图片'}](${m[2] as string})`);
    }
  });
  const text = content.replace(MD_IMAGE, (whole) => replaced.get(whole) ?? whole).replace(/\n{3,}/g, '\n\n').trim();
  return { content: text, images };
}
