import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionKeys } from './deps.js';

/** The console's session cookie. */
export const SESSION_COOKIE = 'wab_session';
/** A console session lasts 12 hours (a shift), then the operator logs in again. */
export const SESSION_TTL_MS = 12 * 3600_000;

/**
 * The session keys, derived from ADMIN_TOKEN with HMAC-SHA256 and fixed labels: every replica and every restart
 * accepts a session another one issued, and changing ADMIN_TOKEN logs every console out.
 */
export function sessionKeys(adminToken: string): SessionKeys {
  const derive = (label: string) => createHmac('sha256', adminToken).update(`wechat-ai-bridge console ${label} v1`).digest();
  return { cookieKey: derive('session'), csrfKey: derive('csrf') };
}

/**
 * A new session cookie value: `<expiry ms>.<random>.<mac>` (base64url MAC over the first two parts).
 * @param nowMs epoch ms
 */
export function issueSession(keys: SessionKeys, nowMs = Date.now()): string {
  const body = `${nowMs + SESSION_TTL_MS}.${randomBytes(16).toString('base64url')}`;
  return `${body}.${mac(keys.cookieKey, body)}`;
}

/** Whether `value` is a session this key issued that has not expired (constant-time MAC compare). */
export function validSession(keys: SessionKeys, value: string | undefined, nowMs = Date.now()): boolean {
  if (!value || value.length > 200) return false;
  const i = value.lastIndexOf('.');
  if (i <= 0) return false;
  const body = value.slice(0, i);
  if (!equal(value.slice(i + 1), mac(keys.cookieKey, body))) return false;
  const expiry = Number(body.slice(0, body.indexOf('.')));
  return Number.isFinite(expiry) && expiry > nowMs;
}

/** The CSRF token of a session: state-changing calls with the cookie must send it (`x-csrf-token`, or a form's `csrf`). */
export function csrfOf(keys: SessionKeys, session: string): string {
  return mac(keys.csrfKey, session);
}

/** Whether `token` is the CSRF token of `session` (constant time). */
export function validCsrf(keys: SessionKeys, session: string, token: string | undefined): boolean {
  return typeof token === 'string' && equal(token, csrfOf(keys, session));
}

function mac(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
