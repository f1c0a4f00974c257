/**
 * The benchmark's WeCom side, in its own process: the strict fake WeCom API, plus an end-to-end driver that
 * plays customers at a fixed rate (add a message, post its encrypted callback to the server) and measures
 * callback → send_msg latency from the moment the callback is posted to the moment the fake receives the reply.
 * Controlled over IPC: {cmd:'e2e', serverUrl, rate (msg/s), durationMs} → {type:'e2e', latencies: ms[], lost}.
 */
import { buildKfCallback, postCallback, startFakeWecom } from '../../test/fakes/wecom-kf.js';
import { BENCH_CREDS, BENCH_KF } from './creds.js';

const fake = await startFakeWecom({ corpId: BENCH_CREDS.corpId, kfSecret: BENCH_CREDS.kfSecret });
// One callback Token for autocannon's pre-built callbacks (valid 10 minutes, longer than a run).
process.send?.({ type: 'ready', url: fake.url, syncToken: fake.issueSyncToken() });

process.on('message', (m: { cmd: string; serverUrl: string; rate: number; durationMs: number }) => {
  if (m.cmd === 'e2e') void e2e(m.serverUrl, m.rate, m.durationMs).then((r) => process.send?.({ type: 'e2e', ...r }));
  if (m.cmd === 'exit') void fake.close().then(() => process.exit(0));
});

async function e2e(serverUrl: string, rate: number, durationMs: number) {
  const total = Math.round((rate * durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const posted = new Map<string, number>();
  const firstSent = fake.sent.length;
  const start = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const content = `e2e-${Date.now()}-${i}`;
    fake.addCustomerText({ open_kfid: BENCH_KF, external_userid: `wmBench${i % 500}`, content });
    posted.set(content, performance.timeOrigin + performance.now());
    const cb = buildKfCallback(BENCH_CREDS, { open_kfid: BENCH_KF, syncToken: fake.issueSyncToken() });
    inflight.push(postCallback(serverUrl, '/wecom/kf/callback', cb).catch(() => undefined));
  }
  await Promise.all(inflight);
  await fake.waitFor(() => fake.sent.length - firstSent >= total, 15_000).catch(() => undefined);
  const latencies: number[] = [];
  for (const s of fake.sent.slice(firstSent)) {
    const t0 = s.content ? posted.get(s.content) : undefined;
    if (t0 !== undefined) latencies.push(s.at - t0);
  }
  return { latencies, lost: total - latencies.length, total };
}
