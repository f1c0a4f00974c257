import { addAbortSignal, pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { FetchRefusedError } from './fetch-error.js';

/**
 * Reads a response body into one Buffer, refusing as soon as more than `maxBytes` have arrived — counted after
 * content decoding, so a small gzip bomb cannot expand past the cap. Reading stops there and the stream is destroyed
 * (the server may still be sending).
 * @param contentEncoding the `Content-Encoding` header: none/`identity`, `gzip`/`x-gzip`, `deflate` or `br`
 * @param maxBytes bytes
 * @param label the redacted URL, for error messages
 * @throws FetchRefusedError `too_large`; `content_type` for another content encoding; the stream's own error (an
 *   AbortError when `signal` fires, a zlib or socket error otherwise) is rethrown for the caller to classify
 */
export async function readBodyCapped(
  body: Readable,
  opts: { maxBytes: number; contentEncoding?: string | undefined; signal: AbortSignal; label: string },
): Promise<Buffer> {
  const encoding = (opts.contentEncoding ?? '').trim().toLowerCase();
  const decoder = decoderFor(encoding);
  if (decoder === undefined) {
    body.destroy();
    throw new FetchRefusedError('content_type', `unsupported content-encoding "${encoding.slice(0, 20)}" from ${opts.label}`);
  }
  addAbortSignal(opts.signal, body);
  // pipeline (not pipe) so a socket error or an abort on `body` reaches the iterator through the decoder.
  const source: Readable = decoder ? pipeline(body, decoder, () => {}) : body;
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (total > opts.maxBytes) {
        throw new FetchRefusedError('too_large', `body of ${opts.label} exceeds ${opts.maxBytes} bytes`);
      }
      chunks.push(buf);
    }
  } finally {
    // Normal completion leaves both ended; on refusal or error this drops the socket instead of draining it.
    if (!body.readableEnded) body.destroy();
    if (decoder && !decoder.readableEnded) decoder.destroy();
  }
  return Buffer.concat(chunks, total);
}

/** null: no decoding needed; undefined: an encoding we do not decode. */
function decoderFor(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null | undefined {
  switch (encoding) {
    case '':
    case 'identity':
      return null;
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}
