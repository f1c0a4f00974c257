import http from 'node:http';
import type { PacedRequest } from './paced.js';

/** How a burst went. Times are epoch ms; `ackMs` are ms. */
export interface BurstResult {
  /** HTTP status → how many requests got it (socket errors under 0) */
  statuses: Map<number, number>;
  /** requests not answered 2xx (socket errors included) */
  refused: number;
  /** when the first request was written and the last answer read, epoch ms */
  startedAt: number;
  endedAt: number;
  /** each 2xx request's time from write to the end of its answer, ms */
  ackMs: number[];
}

/**
 * Posts every request once, as fast as the server answers: `connections` keep-alive connections, each writing the
 * next request when its previous one is answered (closed loop, unlike paced.ts). Our own code because autocannon
 * sends the same request list on every connection, and each OA callback must reach the server exactly once.
 */
export async function postBurst(url: string, requests: PacedRequest[], connections: number): Promise<BurstResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const result: BurstResult = { statuses: new Map(), refused: 0, startedAt: Date.now(), endedAt: 0, ackMs: [] };
  const count = (status: number) => {
    result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
    if (status < 200 || status > 299) result.refused += 1;
  };
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const req = requests[next++] as PacedRequest;
      const sentAt = performance.now();
      const status = await new Promise<number>((resolve) => {
        const r = http.request(
          { host: target.hostname, port: target.port, path: req.path, method: 'POST', agent, headers: { ...req.headers, 'content-length': Buffer.byteLength(req.body) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', () => resolve(-1));
          },
        );
        r.on('error', () => resolve(-1));
        r.end(req.body);
      });
      count(status);
      if (status >= 200 && status <= 299) result.ackMs.push(performance.now() - sentAt);
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, requests.length) }, worker));
  result.endedAt = Date.now();
  agent.destroy();
  return result;
}

/** `200×4998 503×2`: the statuses of a burst, most frequent first (-1 = socket error). */
export function statusSummary(r: BurstResult): string {
  return [...r.statuses].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s}×${n}`).join(' ');
}
