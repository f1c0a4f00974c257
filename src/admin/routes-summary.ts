import type { FastifyInstance } from 'fastify';
import type { Histogram } from 'prom-client';
import type { AdminDeps } from './deps.js';

/** Inbound rows read for the per-minute chart (a busy hour beyond it is drawn from its newest rows). */
const MAX_ROWS = 5000;

/**
 * `POST /admin/doctor`: `npm run doctor`'s checks, for the console (`{results:[{name, ok, detail, fix?, warning?}]}`).
 * `GET /admin/summary`: what the console's status page draws. `perMinute` comes from the message log (every
 * process with MySQL or Redis); the latency figures from this process's histograms, as the upper bound of the
 * bucket holding the quantile (ms; null before any observation).
 */
export function registerSummaryRoute(app: FastifyInstance, d: AdminDeps): void {
  // POST: it calls out (token endpoints, one LLM probe per agent), so the console needs its CSRF token for it.
  app.post('/doctor', { schema: { hide: true } }, async () => ({ results: await d.doctor() }));

  app.get('/summary', { schema: { hide: true } }, async () => {
    const now = Date.now();
    const firstMinute = Math.floor((now - 59 * 60_000) / 60_000) * 60_000;
    const minutes = new Map<number, { answered: number; fallback: number; failed: number }>();
    for (let t = firstMinute; t <= now; t += 60_000) minutes.set(t, { answered: 0, fallback: 0, failed: 0 });
    let read = 0;
    for (let cursor: string | null = null; read < MAX_ROWS; ) {
      const page = await d.log.query({ direction: 'in', fromMs: firstMinute, limit: 200, cursor });
      for (const row of page.items) {
        const bucket = minutes.get(Math.floor(Date.parse(row.at) / 60_000) * 60_000);
        if (bucket && (row.status === 'answered' || row.status === 'fallback' || row.status === 'failed')) bucket[row.status] += 1;
      }
      read += page.items.length;
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const m = d.metrics;
    const breakers = await m.llmBreakerOpen.get();
    const queue = await d.queueCounts().catch(() => ({ waiting: 0, active: 0, delayed: 0 }));
    const up = async (g: typeof m.redisUp) => (g ? ((await g.get()).values[0]?.value === 1 ? 'up' : 'down') : 'off');
    return {
      perMinute: [...minutes].map(([t, c]) => ({ t: new Date(t).toISOString(), ...c })),
      ackP99Ms: await quantileMs(m.ackDuration, 0.99),
      llm: await Promise.all(
        d.agents.map(async (agent) => ({
          agent,
          p95Ms: await quantileMs(m.llmDuration, 0.95, (labels) => labels.agent === agent),
          breakerOpen: breakers.values.some((v) => v.labels.agent === agent && v.value === 1),
        })),
      ),
      queue: { ...queue, lagP99Ms: await quantileMs(m.jobLag, 0.99) },
      redis: await up(m.redisUp),
      mysql: await up(m.mysqlUp),
    };
  });
}

/** The q-quantile of a histogram (summed over the label sets `match` keeps) as its bucket's upper bound, ms. */
async function quantileMs<T extends string>(h: Histogram<T>, q: number, match: (labels: Record<string, unknown>) => boolean = () => true): Promise<number | null> {
  const byBound = new Map<number, number>();
  for (const v of (await h.get()).values) {
    const labels = v.labels as Record<string, unknown>;
    if (!v.metricName?.endsWith('_bucket') || !match(labels)) continue;
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + v.value);
  }
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  const total = byBound.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total === 0) return null;
  const bound = bounds.find((b) => (byBound.get(b) ?? 0) >= q * total) ?? Number.POSITIVE_INFINITY;
  return Number.isFinite(bound) ? bound * 1000 : null;
}
