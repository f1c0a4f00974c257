/**
 * Image type from the bytes themselves (servers and LLM-written URLs lie about Content-Type and extensions, and
 * WeChat rejects an upload whose type does not match). Four magic numbers are all the formats WeChat accepts for
 * an image message; `file-type` would be the library for more, but its current major (22) requires Node ≥ 22 and
 * reads dozens of formats we would refuse anyway.
 */

/** A recognised image type. */
export interface ImageType {
  mime: 'image/jpeg' | 'image/png' | 'image/gif' | 'image/webp';
  /** file extension without the dot, as WeChat's upload wants it in the file name */
  ext: 'jpg' | 'png' | 'gif' | 'webp';
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Sniffs JPEG (`FF D8 FF`), PNG (8-byte signature), GIF (`GIF87a`/`GIF89a`) and WebP (`RIFF····WEBP`).
 * @param bytes the start of the file (12 bytes suffice)
 * @returns the type, or null for anything else (including SVG, which is text and may carry script)
 */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  const at = (offset: number, sig: readonly number[]) => bytes.length >= offset + sig.length && sig.every((b, i) => bytes[offset + i] === b);
  const ascii = (offset: number, s: string) => at(offset, [...s].map((c) => c.charCodeAt(0)));
  if (at(0, [0xff, 0xd8, 0xff])) return { mime: 'image/jpeg', ext: 'jpg' };
  if (at(0, PNG)) return { mime: 'image/png', ext: 'png' };
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return { mime: 'image/gif', ext: 'gif' };
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return { mime: 'image/webp', ext: 'webp' };
  return null;
}
