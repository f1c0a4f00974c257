/**
 * Query-string parser for Fastify's `querystringParser` option. Unlike the default (and URLSearchParams) it
 * does not turn `+` into a space: WeCom's `echostr` is base64 and may arrive with a raw `+`, which must reach
 * the signature check unchanged. The first occurrence of a repeated name wins. A value whose percent-encoding
 * is broken is kept raw; the signature check then refuses it.
 * @returns a plain object of decoded strings (prototype-free, so `__proto__` in a query is just a name)
 */
export function parseQuery(qs: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!qs) return out;
  for (const pair of qs.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    if (!(name in out)) out[name] = value;
  }
  return out;
}

function decode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
