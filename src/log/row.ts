/**
 * What every message-log store does the same way: turning a `NewLogRow` into a stored row (content policy,
 * length, defaults), applying a settlement, matching a `LogQuery`, clamping limits. One place, so the three stores
 * answer a query identically (the contract tests hold them to it).
 */
import type { InboundKey, InboundSettlement, LogQuery, LogRow, NewLogRow } from './types.js';

/**
 * A row before the store gives it an id: `atMs` is epoch ms. `rowKey` (MySQL only): 16 random bytes fixed at
 * `record`, so a batch re-sent after a lost answer is not written twice.
 */
export type PreparedRow = Omit<LogRow, 'id' | 'at'> & { atMs: number; rowKey?: Buffer };

/** A page of `/admin/messages` holds at most this many rows (LogQuery.limit is 1–200). */
export const MAX_PAGE = 200;

/** Clamps a requested page size to 1–200 (a non-finite number asks for the most). */
export function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return MAX_PAGE;
  return Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit)));
}

/** Characters as MySQL counts them (code points), so `length` is the same in every store. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair (a lone surrogate would reach
 * MySQL as U+FFFD). Used to fit values into their columns instead of having a batch refused.
 */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/**
 * Fills the defaults of a new row and applies LOG_MESSAGE_CONTENT: with `logContent` false the content is stored
 * as '' and only its length is kept.
 * @param now epoch ms used when the row has no `atMs`
 */
export function prepareRow(row: NewLogRow, logContent: boolean, now: number): PreparedRow {
  const content = typeof row.content === 'string' ? row.content : '';
  return {
    atMs: row.atMs ?? now,
    direction: row.direction,
    channel: row.channel,
    account: row.account,
    customerId: row.customerId,
    externalId: row.externalId,
    msgid: row.msgid,
    type: row.type,
    content: logContent ? content : '',
    length: charLength(content),
    status: row.status,
    agent: row.agent ?? null,
    latencyMs: row.latencyMs ?? null,
    inputTokens: row.inputTokens ?? null,
    outputTokens: row.outputTokens ?? null,
    replyTo: row.replyTo ?? null,
    errcode: row.errcode ?? null,
  };
}

/** One string per inbound row (channel, account, msgid), for maps and Redis hash fields. */
export function inboundKeyOf(k: InboundKey): string {
  return `${k.channel}\n${k.account}\n${k.msgid}`;
}

/** Applies a settlement to a row in place: the status always, the other fields only when given. */
export function applySettlement<T extends Pick<LogRow, 'status' | 'agent' | 'latencyMs' | 'inputTokens' | 'outputTokens'>>(
  row: T,
  s: InboundSettlement,
): T {
  row.status = s.status;
  if (s.agent !== undefined) row.agent = s.agent;
  if (s.latencyMs !== undefined) row.latencyMs = s.latencyMs;
  if (s.inputTokens !== undefined) row.inputTokens = s.inputTokens;
  if (s.outputTokens !== undefined) row.outputTokens = s.outputTokens;
  return row;
}

/** Merges a later settlement into an earlier one (later fields win, absent fields keep the earlier value). */
export function mergeSettlements(a: InboundSettlement, b: InboundSettlement): InboundSettlement {
  const out: InboundSettlement = { ...a, status: b.status };
  if (b.agent !== undefined) out.agent = b.agent;
  if (b.latencyMs !== undefined) out.latencyMs = b.latencyMs;
  if (b.inputTokens !== undefined) out.inputTokens = b.inputTokens;
  if (b.outputTokens !== undefined) out.outputTokens = b.outputTokens;
  return out;
}

/**
 * Whether a row passes every filter of a query except paging. Text matches case-insensitively, as MySQL's
 * utf8mb4_unicode_ci does for the same query.
 */
export function matchesQuery(row: PreparedRow, q: LogQuery): boolean {
  if (q.channel !== undefined && row.channel !== q.channel) return false;
  if (q.account !== undefined && row.account !== q.account) return false;
  if (q.customerId !== undefined && row.customerId !== q.customerId) return false;
  if (q.direction !== undefined && row.direction !== q.direction) return false;
  if (q.status !== undefined && row.status !== q.status) return false;
  if (q.fromMs !== undefined && row.atMs < q.fromMs) return false;
  if (q.toMs !== undefined && row.atMs > q.toMs) return false;
  if (q.text !== undefined && q.text !== '' && !row.content.toLowerCase().includes(q.text.toLowerCase())) return false;
  return true;
}

/** The stored row as the API shows it. */
export function toLogRow(id: string, r: PreparedRow): LogRow {
  const { atMs, rowKey: _rowKey, ...rest } = r;
  return { id, at: new Date(atMs).toISOString(), ...rest };
}

/** Epoch ms before which rows are past MESSAGE_RETENTION_DAYS. */
export function retentionCutoff(retentionDays: number, now: number): number {
  return now - retentionDays * 86_400_000;
}
