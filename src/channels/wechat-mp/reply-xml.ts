import { randomBytes } from 'node:crypto';
import { XMLBuilder } from 'fast-xml-parser';
import { buildEncryptedXmlReply, computeSignature, encrypt } from '../../crypto/wxbizmsgcrypt.js';
import type { MpSecrets } from './verify.js';

// fast-xml-parser's builder writes CDATA sections and splits a `]]>` inside them, which hand-written templates
// get wrong; the parse side stays on saxes (see xml/parse.ts).
const builder = new XMLBuilder({ cdataPropName: '__cdata' });

/** XML 1.0 forbids most C0 controls even inside CDATA; an LLM can emit them, and WeChat would drop the reply. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ILLEGAL_XML_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/**
 * A passive text reply (docs/protocols.md OA §5): ids swapped (`ToUserName` = the customer's OpenID,
 * `FromUserName` = the account's `gh_` id), `CreateTime` in unix seconds, text in CDATA.
 */
export function buildTextReply(p: { openid: string; ghId: string; content: string; nowS: number }): string {
  return builder.build({
    xml: {
      ToUserName: { __cdata: p.openid },
      FromUserName: { __cdata: p.ghId },
      CreateTime: p.nowS,
      MsgType: { __cdata: 'text' },
      Content: { __cdata: p.content.replace(ILLEGAL_XML_CHARS, '') },
    },
  }) as string;
}

/**
 * The body to send: the reply as is for a plaintext push; for `encrypt_type=aes` (compatible or safe mode)
 * the WXBizMsgCrypt envelope with `Encrypt`, `MsgSignature` (over Token, TimeStamp, Nonce, Encrypt), `TimeStamp`
 * and `Nonce` (the request's when it is alphanumeric, else a fresh one).
 * @param nowS unix seconds
 * @throws CryptoError only when the AES key is missing for an encrypted push (the route refuses those earlier)
 */
export function sealReply(xml: string, p: { encrypted: boolean; secrets: MpSecrets; nonce: string; nowS: number }): string {
  if (!p.encrypted) return xml;
  if (!p.secrets.aesKey) throw new Error('encrypted reply without an EncodingAESKey');
  const ciphertext = encrypt(p.secrets.aesKey, xml, p.secrets.appId);
  const timestamp = String(p.nowS);
  const nonce = /^[A-Za-z0-9]{1,64}$/.test(p.nonce) ? p.nonce : randomBytes(8).toString('hex');
  return buildEncryptedXmlReply({
    encrypt: ciphertext,
    signature: computeSignature(p.secrets.token, timestamp, nonce, ciphertext),
    timestamp,
    nonce,
  });
}
