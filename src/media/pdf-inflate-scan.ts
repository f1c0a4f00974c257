/**
 * A pre-scan that bounds what pdf.js would inflate. pdf.js decodes FlateDecode streams without any cap (a 408 KB
 * PDF whose content stream inflates to 400 MB took 7 s and ~900 MB of RSS), and its `maxPages` does not bound a
 * single page. Before pdf.js sees a file, every stream that holds zlib data is inflated here with Node's zlib and a
 * `maxOutputLength`, and the file is refused once the total passes the budget.
 *
 * What it covers: every `stream` keyword in the file (page contents, fonts, object and xref streams, images), and
 * FlateDecode applied several times over (`[/FlateDecode /FlateDecode]`: the output is inflated again while it
 * starts with a zlib header). It reads from the keyword to wherever the zlib data ends, so a `/Length` or a fake
 * `endstream` inside the data cannot make it stop short of what pdf.js reads.
 *
 * What it does not cover (the worker's wall-clock limit, heap limit and the process RSS watch are the backstop):
 * - other expanding filters: LZWDecode (up to ~2,500:1) and RunLengthDecode (up to 128:1), alone or after Flate;
 * - encrypted PDFs: their streams are ciphertext until pdf.js decrypts them (with the empty user password), so
 *   nothing here inflates;
 * - raw deflate without the zlib header (pdf.js refuses it too, so nothing to cover);
 * - a legitimate PDF whose Flate images inflate past the budget is refused as well: pdf.js would not decode images
 *   for text, but a stream's dictionary cannot be trusted to say what pdf.js will use it as.
 */
import zlib from 'node:zlib';

/** Default budget: inflated bytes of all streams together (32 MiB; a text PDF's streams are a few MiB). */
export const PDF_MAX_INFLATED_BYTES = 32 * 1024 * 1024;
/** Flate layers inflated per stream at most (a longer chain is counted up to here). */
const MAX_LAYERS = 4;
/**
 * zlib streams inflated at most: each inflate has a fixed cost (~20 µs for a zlib handle), so 5 MiB of tiny
 * streams would otherwise cost seconds. A real PDF of a few MiB has hundreds to a few thousand streams.
 */
export const PDF_MAX_STREAMS = 20_000;
const STREAM = Buffer.from('stream');

/**
 * Inflates every zlib stream of a PDF, counting output, and stops at the first byte over `maxTotal`.
 * CPU: up to ~`maxTotal` bytes of inflate (about 0.1 s for 32 MiB); memory: one stream's output at a time.
 * @param bytes the whole file
 * @param maxTotal bytes of inflated output allowed in all
 * @returns `ok: false` once more than `maxTotal` bytes inflated (`inflated` is then `maxTotal + 1`) or more than
 *   {@link PDF_MAX_STREAMS} zlib streams were found; `inflated` and `streams` count what was seen
 */
export function scanPdfInflation(
  bytes: Buffer,
  maxTotal: number = PDF_MAX_INFLATED_BYTES,
): { ok: boolean; inflated: number; streams: number } {
  let inflated = 0;
  let streams = 0;
  for (let at = bytes.indexOf(STREAM); at !== -1; at = bytes.indexOf(STREAM, at + STREAM.length)) {
    if (at >= 3 && bytes.toString('latin1', at - 3, at) === 'end') continue;
    let input = bytes.subarray(dataStart(bytes, at + STREAM.length));
    if (looksLikeZlib(input) && ++streams > PDF_MAX_STREAMS) return { ok: false, inflated, streams };
    for (let layer = 0; layer < MAX_LAYERS && looksLikeZlib(input); layer++) {
      const out = inflateCapped(input, maxTotal - inflated);
      if (out === null) return { ok: false, inflated: maxTotal + 1, streams };
      inflated += out.length;
      input = out;
    }
  }
  return { ok: true, inflated, streams };
}

/** After `stream`, the data starts past one EOL (`\r\n`, `\n` or a lone `\r`), as pdf.js reads it. */
function dataStart(bytes: Buffer, from: number): number {
  let i = from;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x0d) i++;
  if (bytes[i] === 0x0a) i++;
  return i;
}

/** A zlib header: deflate method, a window of at most 32 KiB, and the header checksum (RFC 1950). */
function looksLikeZlib(b: Buffer): boolean {
  const cmf = b[0];
  const flg = b[1];
  return cmf !== undefined && flg !== undefined && (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && (cmf * 256 + flg) % 31 === 0;
}

/**
 * The inflated bytes of `input` up to its end of stream (trailing bytes ignored, as pdf.js ignores them), or null
 * when that is more than `limit` bytes. A truncated stream gives what inflated before the end (Z_SYNC_FLUSH), as
 * pdf.js keeps what it decoded; corrupt data counts as nothing: zlib reaches the output cap before any damage
 * that follows it, so a bomb cannot hide behind a bad byte.
 */
function inflateCapped(input: Buffer, limit: number): Buffer | null {
  try {
    const out = zlib.inflateSync(input, { maxOutputLength: Math.max(1, limit), finishFlush: zlib.constants.Z_SYNC_FLUSH });
    return out.length > limit ? null : out;
  } catch (e) {
    return (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? null : Buffer.alloc(0);
  }
}
