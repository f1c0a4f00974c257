/**
 * The demo's last part: what an operator sees. One page of `GET /admin/messages` (the conversations just played,
 * newest first) and one `POST /v1/chat/completions` answered by the same agent the customers talked to.
 */
import { USE_ENV } from './child.js';

/** The demo server's operator credentials (made up; the server runs on 127.0.0.1 only). */
export const DEMO_ADMIN_TOKEN = 'demo-admin-token-0123456789abcdef';
export const DEMO_V1_KEY = 'demo-v1-key-0123456789';

/** Prints the page and the answer; returns failures (a missing page, a wrong echo answer). */
export async function runOperator(url: string): Promise<{ failures: string[]; expected: number; got: number }> {
  const failures: string[] = [];
  console.log('— What the operator sees: GET /admin/messages (newest first, 12 rows) —\n');
  // Rows are written in the background in batches: give the last ones a moment.
  await new Promise((r) => setTimeout(r, 300));
  const page = await fetch(`${url}/admin/messages?limit=12`, { headers: { authorization: `Bearer ${DEMO_ADMIN_TOKEN}` } });
  let got = 0;
  if (page.status !== 200) failures.push(`/admin/messages answered ${page.status}`);
  else {
    const { items } = (await page.json()) as { items: Array<Record<string, string | null>> };
    for (const m of items) {
      const content = String(m.content ?? '').replace(/\s+/g, ' ').slice(0, 36);
      console.log(`  ${String(m.at).slice(11, 23)}  ${m.direction === 'in' ? '←' : '→'} ${String(m.channel).padEnd(3)} ${String(m.externalId).slice(0, 14).padEnd(14)} ${String(m.type).padEnd(8)} ${String(m.status).padEnd(9)} ${content}`);
    }
    if (items.length === 0) failures.push('/admin/messages was empty');
    else got += 1;
  }
  console.log('\n— The same agent through the OpenAI-compatible API: POST /v1/chat/completions —\n');
  const question = '你们支持开发票吗？';
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEMO_V1_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: question }], user: 'demo-operator' }),
  });
  const body = (await res.json().catch(() => null)) as { choices?: Array<{ message?: { content?: string } }> } | null;
  const answer = body?.choices?.[0]?.message?.content ?? null;
  console.log(`  [user] ${question}\n  [default] ${answer ?? `(HTTP ${res.status})`}\n`);
  if (res.status !== 200 || answer === null) failures.push(`/v1/chat/completions answered ${res.status}`);
  else if (!USE_ENV && answer !== question) failures.push(`/v1 answer was ${JSON.stringify(answer)}, expected the echo`);
  else got += 1;
  return { failures, expected: 2, got };
}
