import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';

const MiB = 1024 * 1024;

/** What running one piece of work cost the process (this thread's event loop, and the whole process's memory). */
export interface Cost<T> {
  value: T;
  /** wall time of the work, ms */
  wallMs: number;
  /**
   * the longest event-loop delay seen while it ran, ms, as `monitorEventLoopDelay({ resolution: 10 })` reports it:
   * the figure includes the 10 ms sampling interval itself (an idle loop reads 10–13 ms)
   */
  loopMaxMs: number;
  /** peak RSS growth over the start, MiB (sampled every 5 ms on this thread, and at the end) */
  rssGrowthMiB: number;
}

/**
 * Runs `work` and measures what it cost. A blocked event loop shows twice: as `loopMaxMs` and as RSS samples that
 * could not be taken (the final sample still sees the memory that is left).
 */
export async function measureCost<T>(work: () => Promise<T>): Promise<Cost<T>> {
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const started = performance.now();
  try {
    const value = await work();
    const wallMs = performance.now() - started;
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, wallMs, loopMaxMs: loop.max / 1e6, rssGrowthMiB: (peak - rss0) / MiB };
  } finally {
    loop.disable();
    clearInterval(sampler);
  }
}

/** A pino logger whose records land in `records` (parsed), for asserting what was logged and why. */
export function capturingLogger(): { log: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, records };
}
