/**
 * Temporary media shared by the WeCom kf and Official Account fakes: an in-memory store with the 3-day lifetime of
 * WeChat temporary media, a multipart/form-data parser (busboy) for `media/upload`, and the HTTP writer for
 * `media/get` (bytes, `Content-Disposition`, optional single `Range`). No platform rules here: which types, sizes
 * and error codes apply is decided in wecom-kf-state.ts and wechat-mp-api-state.ts.
 *
 * Units: `createdAtMs` / `at` are epoch milliseconds from Date.now() (so `vi.useFakeTimers()` moves them);
 * sizes are bytes.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import busboy from 'busboy';

/** Temporary media live 3 days (both platforms); afterwards `media/get` and sends answer 40007. */
export const MEDIA_TTL_MS = 3 * 24 * 3600_000;
/** Largest request body accepted on a `media/upload` route (the largest limit, 20 MB files, plus multipart framing). */
export const MAX_UPLOAD_BODY = 21 * 1024 * 1024;
export const MB = 1024 * 1024;

/** One stored medium. `type` is the platform's media type (image, voice, video, file, thumb). */
export interface MediaItem {
  media_id: string;
  type: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  /** epoch ms */
  createdAtMs: number;
}

/** One part of a parsed multipart body. `filename` is undefined for a plain field. Sizes in bytes. */
export interface FormPart {
  name: string;
  filename: string | undefined;
  contentType: string;
  bytes: Buffer;
}

/** The media of one fake instance, keyed by media_id. */
export class MediaStore {
  private readonly items = new Map<string, MediaItem>();

  /** @param newId makes a fresh media_id in the platform's shape. */
  constructor(private readonly newId: () => string) {}

  /** Stores bytes and returns the item (a fresh media_id, created now). */
  put(p: { type: string; filename: string; contentType: string; bytes: Buffer }, nowMs = Date.now()): MediaItem {
    const item: MediaItem = { media_id: this.newId(), ...p, bytes: Buffer.from(p.bytes), createdAtMs: nowMs };
    this.items.set(item.media_id, item);
    return item;
  }

  /** The item if it exists and is younger than 3 days, else undefined. */
  get(mediaId: unknown, nowMs = Date.now()): MediaItem | undefined {
    if (typeof mediaId !== 'string') return undefined;
    const item = this.items.get(mediaId);
    return item !== undefined && nowMs - item.createdAtMs < MEDIA_TTL_MS ? item : undefined;
  }
}

/** WeCom-shaped media_id: 44 characters of `[A-Za-z0-9_-]` starting with a digit (like `1G6nrLmr5EC3…`). */
export const wecomMediaId = (): string => `${1 + (randomBytes(1)[0]! % 9)}${randomBytes(33).toString('base64url').slice(0, 43)}`;
/** Official-Account-shaped media_id: 64 characters of `[A-Za-z0-9_-]`. */
export const mpMediaId = (): string => randomBytes(48).toString('base64url');

/** The lower-case extension of a filename without the dot ('' when none). */
export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot <= 0 || dot === filename.length - 1 ? '' : filename.slice(dot + 1).toLowerCase();
}

/** The media type a test's `addMedia` gets when none is given: image/*, audio/* (voice), video/*, else file. */
export function typeFromContentType(contentType: string): string {
  if (contentType.startsWith('image/')) return 'image';
  if (contentType.startsWith('audio/')) return 'voice';
  if (contentType.startsWith('video/')) return 'video';
  return 'file';
}

/** True for a stored medium (as opposed to a JSON error answer). */
export const isMediaItem = (v: unknown): v is MediaItem =>
  typeof v === 'object' && v !== null && Buffer.isBuffer((v as Partial<MediaItem>).bytes);

/**
 * Parses a buffered multipart/form-data body. Returns null when the Content-Type is not multipart/form-data with a
 * boundary or the body is malformed. Parts with a filename (or application/octet-stream) are files; a part without
 * a filename comes back with `filename: undefined`. Part-header parameters are decoded as UTF-8 (browsers and
 * Node's FormData send file names that way).
 */
export function parseMultipart(contentType: string | undefined, body: Buffer): Promise<FormPart[] | null> {
  if (contentType === undefined || !/^multipart\/form-data\s*;/i.test(contentType)) return Promise.resolve(null);
  return new Promise((resolve) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType }, defParamCharset: 'utf8' });
    } catch {
      resolve(null);
      return;
    }
    const parts: FormPart[] = [];
    const pending: Array<Promise<void>> = [];
    let failed = false;
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      pending.push(
        new Promise<void>((done) => {
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', () => {
            failed = true;
            done();
          });
          stream.on('end', () => {
            parts.push({ name, filename: info.filename, contentType: info.mimeType, bytes: Buffer.concat(chunks) });
            done();
          });
        }),
      );
    });
    bb.on('field', (name, value, info) => {
      parts.push({ name, filename: undefined, contentType: info.mimeType, bytes: Buffer.from(value, 'utf8') });
    });
    bb.on('error', () => resolve(null));
    bb.on('close', () => {
      void Promise.all(pending).then(() => resolve(failed ? null : parts));
    });
    bb.end(body);
  });
}

/** A summary of parsed parts for the `calls` log (no bytes): name, filename, content type and size in bytes. */
export function describeParts(parts: FormPart[]): Array<{ name: string; filename?: string; contentType: string; size: number }> {
  return parts.map((p) => ({
    name: p.name,
    ...(p.filename !== undefined && { filename: p.filename }),
    contentType: p.contentType,
    size: p.bytes.length,
  }));
}

/**
 * `Content-disposition: attachment; filename="…"` as WeChat sends it. A name outside printable ASCII is sent as raw
 * UTF-8 bytes inside the quotes (what Tencent's servers are believed to do — unconfirmed), so a client reading the
 * header as latin1 must re-decode it as UTF-8; `"` and `\` are backslash-escaped.
 */
export function contentDisposition(filename: string): string {
  const escaped = filename.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, '_');
  return `attachment; filename="${Buffer.from(escaped, 'utf8').toString('latin1')}"`;
}

/**
 * Writes a medium like `media/get`: HTTP 200 with the stored Content-Type, Content-disposition and Content-Length.
 * With `allowRange`, a single `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` answers 206 with Content-Range
 * (an unsatisfiable range answers 416). Returns the HTTP status written.
 */
export function writeMedia(res: http.ServerResponse, item: MediaItem, range: string | undefined, allowRange: boolean): number {
  const headers: http.OutgoingHttpHeaders = {
    'content-type': item.contentType,
    'content-disposition': contentDisposition(item.filename),
    'cache-control': 'no-cache, must-revalidate',
  };
  const size = item.bytes.length;
  const r = allowRange && range !== undefined ? parseRange(range, size) : null;
  if (r === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    return 416;
  }
  if (r !== null) {
    const body = item.bytes.subarray(r.start, r.end + 1);
    res
      .writeHead(206, {
        ...headers,
        'accept-ranges': 'bytes',
        'content-range': `bytes ${r.start}-${r.end}/${size}`,
        'content-length': body.length,
      })
      .end(body);
    return 206;
  }
  res.writeHead(200, { ...headers, ...(allowRange && { 'accept-ranges': 'bytes' }), 'content-length': size }).end(item.bytes);
  return 200;
}

/** A single byte range (inclusive ends), 'unsatisfiable', or null when the header is not a single bytes range. */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  return start >= size ? 'unsatisfiable' : { start, end };
}
