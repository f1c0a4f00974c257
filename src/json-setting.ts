import { parse as parseTolerant, printParseErrorCode, type ParseError } from 'jsonc-parser';

/** A JSON setting (AGENTS, AGENT_ROUTES, WECHAT_MP_CLICK_REPLIES) as parsed, or why it is not JSON. */
export type JsonSetting = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Parses the value of a JSON environment variable.
 * JSON.parse decides (strict JSON); when it refuses, jsonc-parser (VS Code's JSON scanner) finds where: V8's own
 * message gives a character position only for some errors and quotes the text around it, and these settings hold
 * API keys.
 * @returns the value, or a problem naming the line and column of the first error and what is wrong there, never
 *   quoting the text
 */
export function parseJsonSetting(raw: string): JsonSetting {
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    const errors: ParseError[] = [];
    parseTolerant(raw, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    const offset = first ? first.offset : raw.length;
    const before = raw.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    const what = first ? printParseErrorCode(first.error) : 'InvalidJson';
    return { ok: false, problem: `is not valid JSON: ${what} at line ${line}, column ${column}` };
  }
}

/**
 * A JSON setting that must be an object (AGENTS, AGENT_ROUTES, WECOM_BOTS): its entries in their order, or the one
 * problem to report, prefixed with the variable's name (`NAME: …`), never quoting the value.
 * @param example what a valid value looks like, for the "must be a JSON object such as …" problem
 */
export function parseJsonObjectSetting(name: string, raw: string, example: string): { entries: Array<[string, unknown]> } | { problem: string } {
  const parsed = parseJsonSetting(raw);
  if (!parsed.ok) return { problem: `${name}: ${parsed.problem}` };
  const v = parsed.value;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { problem: `${name}: must be a JSON object such as ${example}` };
  return { entries: Object.entries(v) };
}
