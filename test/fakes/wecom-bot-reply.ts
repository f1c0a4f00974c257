/**
 * Opens the server's answer to a smart-bot callback the way WeCom would, strictly (wecom-aibot-protocol.md §2
 * "Encrypted reply", §4 stream rules). Any violation throws a {@link BotReplyError}: in a test that is a failure of
 * our server, never something to retry. Crypto comes from the reference implementation, never from `src/`.
 *
 * Units: the envelope's `timestamp` is unix SECONDS; sizes are bytes (UTF-8 for text).
 */
import { createHash } from 'node:crypto';
import { botDecrypt, botSignature } from './wecom-bot-reference-crypto.js';
import type { Json } from './wecom-bot-messages.js';

/** The server broke the smart-bot protocol; `message` says how, and includes the offending body (shortened). */
export class BotReplyError extends Error {
  override name = 'BotReplyError';
}

/** One image of a final stream frame: base64 of the raw bytes and their hex MD5. */
export interface StreamImage {
  msgtype: 'image';
  image: { base64: string; md5: string };
}

/** `stream` of a reply frame (§4). `content` is the WHOLE text so far; `finish` absent counts as false. */
export interface StreamFrame {
  id: string;
  finish?: boolean;
  content?: string;
  msg_item?: StreamImage[];
  feedback?: { id: string };
}

/** A decrypted reply: a `stream` frame, a `stream_with_template_card`, a welcome `text`, a `template_card`, … */
export type BotReply = { msgtype: string; stream?: StreamFrame; text?: { content: string } } & Json;

/** Largest `stream.content` / markdown in UTF-8 bytes. */
export const MAX_CONTENT_BYTES = 20480;
/** Largest image in a final frame, before base64. */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const ENVELOPE_KEYS = ['encrypt', 'msgsignature', 'nonce', 'timestamp'];
/** How far the reply's timestamp may be from now (s): catches milliseconds and stale clocks, not skew. */
const TIMESTAMP_SLACK_S = 300;

const short = (s: string): string => (s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
const fail = (what: string, body: string): never => {
  throw new BotReplyError(`smart-bot reply: ${what}; body: ${short(body)}`);
};
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks an HTTP 200 reply body against the callback it answers and returns the decrypted reply JSON. The body
 * must be a JSON object with exactly `encrypt, msgsignature, timestamp, nonce`; `nonce` equal to the callback's
 * query nonce; `timestamp` an integer of unix seconds within 5 minutes of now; `msgsignature` = SHA-1 of sorted
 * `[token, String(timestamp), nonce, encrypt]`; the ciphertext must decrypt with receive id "" to a JSON object
 * with a string `msgtype`. The empty body (allowed for every callback) is the caller's business: not passed here.
 */
export function openBotReply(body: string, req: { token: string; encodingAesKey: string; nonce: string }): BotReply {
  let outer: unknown;
  try {
    outer = JSON.parse(body);
  } catch {
    return fail('body is not JSON', body);
  }
  if (!isObj(outer)) return fail('body is not a JSON object', body);
  const keys = Object.keys(outer).sort();
  if (keys.join() !== ENVELOPE_KEYS.join()) return fail(`envelope keys are [${keys.join(', ')}], want exactly [${ENVELOPE_KEYS.join(', ')}]`, body);
  const { encrypt, msgsignature, timestamp, nonce } = outer;
  if (typeof encrypt !== 'string' || encrypt === '') return fail('encrypt is not a non-empty string', body);
  if (nonce !== req.nonce) return fail(`nonce ${JSON.stringify(nonce)} is not the callback's ${JSON.stringify(req.nonce)}`, body);
  if (typeof timestamp !== 'number' || !Number.isInteger(timestamp)) return fail(`timestamp ${JSON.stringify(timestamp)} is not an integer`, body);
  if (Math.abs(timestamp - Date.now() / 1000) > TIMESTAMP_SLACK_S) return fail(`timestamp ${timestamp} is not unix seconds of now`, body);
  const want = botSignature(req.token, String(timestamp), req.nonce, encrypt);
  if (msgsignature !== want) return fail(`msgsignature ${JSON.stringify(msgsignature)} is wrong (want ${want})`, body);
  let inner: { plaintext: string; receiveid: string };
  try {
    inner = botDecrypt(req.encodingAesKey, encrypt);
  } catch (e) {
    return fail(`encrypt does not decrypt (${(e as Error).message})`, body);
  }
  if (inner.receiveid !== '') return fail(`receive id is ${JSON.stringify(inner.receiveid)}, not ""`, body);
  let reply: unknown;
  try {
    reply = JSON.parse(inner.plaintext);
  } catch {
    return fail(`decrypted reply is not JSON: ${short(inner.plaintext)}`, body);
  }
  if (!isObj(reply) || typeof reply.msgtype !== 'string') return fail(`decrypted reply has no string msgtype: ${short(inner.plaintext)}`, body);
  return reply as BotReply;
}

/**
 * Checks a reply that answers a message or a refresh and returns its `stream` (§4): `msgtype` stream or
 * stream_with_template_card; `stream.id` a non-empty string (also required on refresh frames, though WeCom
 * demands it only on the first); `finish` boolean if present; `content` a string of ≤ 20480 UTF-8 bytes if present;
 * `msg_item` only with `finish: true`, ≤ 10 JPG/PNG images of ≤ 10 MB whose `md5` is the hex MD5 of the decoded
 * bytes; `feedback.id` ≤ 256 bytes. Throws a {@link BotReplyError} naming the first violation.
 */
export function checkStreamFrame(reply: BotReply): StreamFrame {
  const text = JSON.stringify(reply);
  const bad = (what: string): never => fail(what, text);
  if (reply.msgtype !== 'stream' && reply.msgtype !== 'stream_with_template_card') bad(`msgtype ${reply.msgtype} is not a stream reply`);
  const s = reply.stream;
  if (!isObj(s)) return bad('stream is not an object');
  if (typeof s.id !== 'string' || s.id === '') bad('stream.id is not a non-empty string');
  if (s.finish !== undefined && typeof s.finish !== 'boolean') bad('stream.finish is not a boolean');
  if (s.content !== undefined && typeof s.content !== 'string') bad('stream.content is not a string');
  if (typeof s.content === 'string' && Buffer.byteLength(s.content) > MAX_CONTENT_BYTES) {
    bad(`stream.content is ${Buffer.byteLength(s.content)} bytes, over ${MAX_CONTENT_BYTES}`);
  }
  if (s.msg_item !== undefined) checkImages(s.msg_item, s.finish === true, bad);
  if (s.feedback !== undefined && (!isObj(s.feedback) || typeof s.feedback.id !== 'string' || Buffer.byteLength(s.feedback.id) > 256)) {
    bad('stream.feedback.id is not a string of ≤ 256 bytes');
  }
  return s as StreamFrame;
}

function checkImages(items: unknown, finish: boolean, bad: (what: string) => never): void {
  if (!finish) bad('stream.msg_item on a frame without finish: true');
  if (!Array.isArray(items) || items.length > 10) bad('stream.msg_item is not an array of at most 10 items');
  for (const [i, it] of (items as unknown[]).entries()) {
    const img = isObj(it) && it.msgtype === 'image' && isObj(it.image) ? it.image : undefined;
    if (!img || typeof img.base64 !== 'string' || typeof img.md5 !== 'string') bad(`msg_item[${i}] is not {msgtype: image, image: {base64, md5}}`);
    const raw = Buffer.from(img!.base64 as string, 'base64');
    if (raw.toString('base64') !== img!.base64) bad(`msg_item[${i}].image.base64 is not canonical base64`);
    if (raw.length > MAX_IMAGE_BYTES) bad(`msg_item[${i}] is ${raw.length} bytes, over 10 MB`);
    const jpg = raw[0] === 0xff && raw[1] === 0xd8 && raw[2] === 0xff;
    const png = raw.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    if (!jpg && !png) bad(`msg_item[${i}] is neither JPG nor PNG`);
    if (createHash('md5').update(raw).digest('hex') !== img!.md5) bad(`msg_item[${i}].image.md5 is not the MD5 of the bytes`);
  }
}
