import http from 'node:http';

/** One request of a paced run. */
export interface PacedRequest {
  path: string;
  body: string;
  headers: Record<string, string>;
}

export interface PacedResult {
  /** ms from the moment each request was written to the end of its response */
  latencies: number[];
  /** ms from each request's scheduled time to the end of its response (coordinated-omission corrected) */
  fromSchedule: number[];
  errors: number;
}

/**
 * An open-loop load at a fixed rate: request i is written at start + i/rate, whether or not earlier ones have
 * answered, over keep-alive connections. Our own code because autocannon's `-R` is wrong for latency: each
 * connection fires its per-second quota back to back and then pauses, so at 1,000/s it sends bursts and its
 * p99 reflects the burst queue (the bare route showed ~70 ms), not the server.
 * @param rate requests per second; durationMs the run's length in ms
 */
export async function pacedLoad(url: string, requests: PacedRequest[], rate: number, durationMs: number): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(url);
  const total = Math.round((rate * durationMs) / 1000);
  const interval = 1000 / rate;
  const result: PacedResult = { latencies: [], fromSchedule: [], errors: 0 };
  const start = performance.now();
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const fire = (i: number) => {
      const scheduled = start + i * interval;
      const req = requests[i % requests.length] as PacedRequest;
      const sentAt = performance.now();
      const r = http.request(
        { host: target.hostname, port: target.port, path: req.path, method: 'POST', agent, headers: { ...req.headers, 'content-length': Buffer.byteLength(req.body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            const end = performance.now();
            if (res.statusCode === 200) {
              result.latencies.push(end - sentAt);
              result.fromSchedule.push(end - scheduled);
            } else result.errors += 1;
            if (++done === total) resolve();
          });
        },
      );
      r.on('error', () => {
        result.errors += 1;
        if (++done === total) resolve();
      });
      r.end(req.body);
    };
    const tick = () => {
      const now = performance.now();
      while (next < total && start + next * interval <= now) fire(next++);
      if (next < total) setTimeout(tick, Math.max(0, start + next * interval - performance.now()));
    };
    tick();
  });
  agent.destroy();
  return result;
}
