import { verifyMpSignature } from '../../crypto/mp-signature.js';
import { verifySignature } from '../../crypto/wxbizmsgcrypt.js';
import { HttpError } from '../../http/http-error.js';
import { extractEncrypt, openEncrypted, requireParams } from '../../http/secure-callback.js';
import { XmlError, parseXml, type XmlElement } from '../../xml/parse.js';

/** What the OA routes need to check a push. */
export interface MpSecrets {
  token: string;
  appId: string;
  /** the 32-byte key from `parseEncodingAesKey`, or null when no EncodingAESKey is configured (plaintext only) */
  aesKey: Buffer | null;
}

/** A verified push: the message to trust, and how the answer must be wrapped. */
export interface OpenedPush {
  message: XmlElement;
  /** the request had `encrypt_type=aes`: a passive reply must be encrypted */
  encrypted: boolean;
  /** the request's nonce (reused for an encrypted reply) */
  nonce: string;
}

const MAX_PARAM_CHARS = 128;
const PLAINTEXT_HINT =
  'WECHAT_MP_ENCODING_AES_KEY is set, so pushes must be encrypted: set 消息加解密方式 to 安全模式 (or 兼容模式) in the ' +
  'Official Account console (开发 → 基本配置 → 服务器配置), or unset WECHAT_MP_ENCODING_AES_KEY to use 明文模式';

/**
 * Checks an OA push in docs/configuration.md's order and statuses: query (400) → body well-formed, no DOCTYPE/ENTITY,
 * `Encrypt` present when encrypted (400) → `signature`, and `msg_signature` when encrypted (401) → a plaintext
 * push while an EncodingAESKey is configured (401 `plaintext_refused`: the account is pinned to compatible/safe
 * mode) → timestamp within `maxSkewS` (401) → AES (400) → receiveid = AppID (401) → inner XML (400). With
 * `encrypt_type=aes` only the decrypted part is trusted (compatible mode's plaintext siblings are ignored;
 * docs/protocols.md OA §3). `openid` is never trusted (FromUserName is).
 * @param nowS unix seconds
 * @throws HttpError
 */
export function openMpPush(p: {
  secrets: MpSecrets;
  query: Record<string, string>;
  body: string;
  maxSkewS: number;
  nowS: number;
}): OpenedPush {
  const encrypted = p.query.encrypt_type === 'aes';
  const q = requireParams(p.query, encrypted ? ['signature', 'timestamp', 'nonce', 'msg_signature'] : ['signature', 'timestamp', 'nonce']);
  for (const optional of ['openid', 'encrypt_type']) {
    if ((p.query[optional]?.length ?? 0) > MAX_PARAM_CHARS) {
      throw new HttpError(400, 'long_param', `query parameter ${optional} is too long`);
    }
  }
  const plain = encrypted ? null : parseBody(p.body, null, 'body is not well-formed XML');
  const encrypt = encrypted ? extractEncrypt(p.body) : null;
  if (!verifyMpSignature(q.signature, p.secrets.token, q.timestamp, q.nonce)) {
    throw new HttpError(401, 'bad_signature', 'signature mismatch');
  }
  if (plain) {
    // Pinned to the configured mode: a plaintext `signature` covers no body, so with an EncodingAESKey set a push
    // without encrypt_type=aes could only be a downgrade by someone who saw one signed URL.
    if (p.secrets.aesKey) throw new HttpError(401, 'plaintext_refused', 'plaintext push refused', PLAINTEXT_HINT);
    checkSkew(q.timestamp, p.maxSkewS, p.nowS);
    return { message: plain, encrypted: false, nonce: q.nonce };
  }
  if (!p.secrets.aesKey) refuseWithoutKey(p, q.timestamp, q.nonce, encrypt ?? '');
  const inner = openEncrypted({
    secrets: { token: p.secrets.token, aesKey: p.secrets.aesKey as Buffer, receiveid: p.secrets.appId },
    signature: p.query.msg_signature ?? '',
    timestamp: q.timestamp,
    nonce: q.nonce,
    encrypt: encrypt ?? '',
    maxSkewS: p.maxSkewS,
    nowS: p.nowS,
  });
  return { message: parseBody(inner, 'bad_inner_xml', 'decrypted message is not valid XML'), encrypted: true, nonce: q.nonce };
}

/**
 * The GET server check (docs/protocols.md OA §2): `signature` over Token, timestamp, nonce.
 * @returns the `echostr` exactly as received (never encrypted for OA)
 * @throws HttpError 400 missing/long parameter, 401 bad signature
 */
export function verifyMpServer(token: string, query: Record<string, string>): string {
  const q = requireParams(query, ['signature', 'timestamp', 'nonce', 'echostr']);
  if (!verifyMpSignature(q.signature, token, q.timestamp, q.nonce)) {
    throw new HttpError(401, 'bad_signature', 'signature mismatch');
  }
  return q.echostr;
}

function checkSkew(timestamp: string, maxSkewS: number, nowS: number): void {
  if (maxSkewS <= 0) return;
  const ts = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!(Math.abs(nowS - ts) <= maxSkewS)) throw new HttpError(401, 'stale_timestamp', 'timestamp out of range');
}

/**
 * An encrypted push while no EncodingAESKey is configured is an AES failure (400), reported only after the
 * `msg_signature` and timestamp checks like any other, so an unsigned or replayed probe learns nothing.
 */
function refuseWithoutKey(
  p: { secrets: MpSecrets; query: Record<string, string>; maxSkewS: number; nowS: number },
  timestamp: string,
  nonce: string,
  encrypt: string,
): never {
  if (!verifySignature(p.query.msg_signature ?? '', p.secrets.token, timestamp, nonce, encrypt)) {
    throw new HttpError(401, 'bad_signature', 'signature mismatch');
  }
  checkSkew(timestamp, p.maxSkewS, p.nowS);
  throw new HttpError(400, 'no_aes_key', 'encrypted push but no EncodingAESKey is configured');
}

/** @param reason null = the parser's own problem name (as the kf route reports an outer body) */
function parseBody(xml: string, reason: string | null, message: string): XmlElement {
  try {
    return parseXml(xml);
  } catch (e) {
    if (e instanceof XmlError) throw new HttpError(400, reason ?? e.problem, reason ? message : e.message);
    throw e;
  }
}
