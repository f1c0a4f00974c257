/**
 * Fake OpenAI-compatible LLM whose behaviour is chosen per customer message: one instance of the fake
 * (test/fakes/openai.ts) per behaviour, each with that behaviour as its default, and a streaming pass-through
 * router in front that picks the instance by the tag before the first `-` of the last user message
 * (`e500-…`, `hang-…`, `drop-…`; anything else goes to the healthy one). A retry of the same message meets the
 * same fault; concurrent messages cannot steal each other's scripted behaviour.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIBehavior } from '../fakes/openai.js';

export interface LlmRouter {
  /** OPENAI_BASE_URL for the bridge (`…/v1`) */
  baseUrl: string;
  /** requests seen per tag (retries included) */
  requests: Record<string, number>;
  close(): Promise<void>;
}

const HOP = ['connection', 'keep-alive', 'transfer-encoding'];

function lastUserText(body: unknown): string {
  const messages = (body as { messages?: Array<{ role?: string; content?: unknown }> } | null)?.messages ?? [];
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

/** @param faults tag → behaviour of the fake instance that serves messages with that tag */
export async function startLlmRouter(faults: Record<string, FakeOpenAIBehavior>): Promise<LlmRouter> {
  const fakes = new Map<string, FakeOpenAI>();
  const healthy = await startFakeOpenAI();
  for (const [tag, behavior] of Object.entries(faults)) {
    const f = await startFakeOpenAI();
    f.setDefault(behavior);
    fakes.set(tag, f);
  }
  const requests: Record<string, number> = {};

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        // forwarded as is; the fake answers 400
      }
      const tag = lastUserText(parsed).split('-')[0] ?? '';
      const target = fakes.get(tag) ?? healthy;
      const key = fakes.has(tag) ? tag : 'healthy';
      requests[key] = (requests[key] ?? 0) + 1;
      const upstream = new URL(target.baseUrl);
      const headers: http.OutgoingHttpHeaders = { ...req.headers, host: upstream.host };
      for (const h of HOP) delete headers[h];
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent: false },
        (ur) => {
          const out: http.OutgoingHttpHeaders = { ...ur.headers };
          for (const h of HOP) delete out[h];
          res.writeHead(ur.statusCode ?? 502, out);
          res.flushHeaders();
          ur.on('data', (c: Buffer) => res.write(c));
          ur.on('end', () => res.end());
          // The fake destroyed its socket mid-body ("drop"): do the same to the bridge.
          ur.on('close', () => {
            if (!ur.complete) res.destroy();
          });
          ur.on('error', () => res.destroy());
        },
      );
      up.on('error', () => res.destroy());
      // The bridge gave up (deadline) while the fake hangs: let the fake see the client go too.
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      up.end(raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([healthy, ...fakes.values()].map((f) => f.close()));
    },
  };
}
