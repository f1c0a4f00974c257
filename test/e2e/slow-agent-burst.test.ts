import { describe, expect, it } from 'vitest';
import { jobConcurrency, JOB_CONCURRENCY } from '../../src/deps.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { redisUrl } from '../helpers/redis.js';

const KEY = 'sk-test-burst-0123456789';
const CUSTOMERS = 150;

describe('job concurrency follows the agents’ maxConcurrency', () => {
  it('at least JOB_CONCURRENCY; else the sum of the agents’ limits', () => {
    expect(jobConcurrency([{ maxConcurrency: 32 }])).toBe(JOB_CONCURRENCY);
    expect(jobConcurrency([{ maxConcurrency: 5000 }])).toBe(5000);
    expect(jobConcurrency([{ maxConcurrency: 100 }, { maxConcurrency: 60 }])).toBe(160);
  });

  for (const store of ['memory', 'redis'] as const) {
    // With the old fixed limit of 64 jobs per process, the 65th customer waited a whole slow answer for a job slot.
    it.skipIf(store === 'redis' && !redisUrl)(`${store}: ${CUSTOMERS} customers at once on a slow agent with maxConcurrency ${CUSTOMERS} all reach it before the first answer`, async () => {
      let llm: FakeOpenAI | null = null;
      let h: Harness | null = null;
      try {
        llm = await startFakeOpenAI({ apiKey: KEY });
        llm.setDefault({ kind: 'answer', firstByteDelayMs: 4000 });
        h = await startHarness({
          redis: store === 'redis',
          env: {
            AGENTS: JSON.stringify({ slow: { provider: 'openai', baseUrl: llm.baseUrl, apiKey: KEY, model: 'm', maxConcurrency: CUSTOMERS, timeoutMs: 20_000 } }),
            AGENT_ROUTES: JSON.stringify({ 'kf:wkBURST': 'slow' }),
          },
        });
        const fake = h.fake;
        for (let i = 0; i < CUSTOMERS; i++) fake.addCustomerText({ open_kfid: 'wkBURST', external_userid: `wmBurst${i}`, content: `问题${i}` });
        const t0 = Date.now();
        const ack = await h.callback('wkBURST');
        expect(ack.status).toBe(200);
        await llm.waitForRequests(CUSTOMERS, 3500);
        // every customer's question is at the LLM before the first answer can have come back
        expect(Date.now() - t0).toBeLessThan(4000);
        expect(fake.sent).toHaveLength(0);
        await fake.waitFor(() => fake.sent.length === CUSTOMERS, 15_000);
        expect(textsTo(fake, 'wmBurst7')).toHaveLength(1);
      } finally {
        await h?.close();
        await llm?.close();
      }
    }, 30_000);
  }
});
