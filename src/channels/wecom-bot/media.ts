import { createDecipheriv } from 'node:crypto';
import type { AxiosInstance } from 'axios';
import { pkcs7Unpad } from '../../crypto/pkcs7.js';
import { requestMedia, type MediaFile } from '../../wechat-api/http.js';

/**
 * Downloads one smart-bot media URL (valid 5 minutes) and decrypts it (wecom-aibot-protocol.md §3 "Media
 * download", §9.3): AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes. The key is the message's
 * own `aeskey` (long connection, base64) or else the bot's EncodingAESKey (callback mode).
 * The URL comes inside a signed, decrypted callback (WeCom's, not a customer's link), so no SSRF policy applies;
 * size and time are still capped.
 * @param maxBytes the decrypted size allowed (MEDIA_MAX_BYTES or FILE_MAX_BYTES); the download may be 32 bytes more
 * @throws WechatApiError when the download fails or is too large (non-retryable for 4xx/413); CryptoError when the
 *   bytes do not decrypt (not WeCom's encryption, or a wrong key)
 */
export async function downloadBotMedia(
  http: AxiosInstance,
  req: { url: string; aesKey: Buffer; maxBytes: number; signal: AbortSignal },
): Promise<MediaFile> {
  const file = await requestMedia(http, 'aibot/media', { path: req.url, params: {}, maxBytes: req.maxBytes + 32, signal: req.signal });
  const decipher = createDecipheriv('aes-256-cbc', req.aesKey, req.aesKey.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = pkcs7Unpad(Buffer.concat([decipher.update(file.data), decipher.final()]));
  return { ...file, data: Buffer.from(plain) };
}

/** The AES key of a long-connection media item: base64 of 32 bytes. @returns null when it is not one */
export function aeskeyBytes(aeskey: string): Buffer | null {
  const key = Buffer.from(aeskey, 'base64');
  return key.length === 32 ? key : null;
}
