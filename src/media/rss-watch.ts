/**
 * The process-level backstop of the extraction pool. A worker's `resourceLimits` cap its V8 heap only: the
 * ArrayBuffers pdf.js inflates into, and native memory, are outside them. While extractions run, the process's
 * resident set is sampled; when it has grown past a limit since the first of them started, every running
 * extraction is aborted (the pool then terminates their threads, which frees what they held).
 */

/** Watches RSS around extractions. */
export interface RssWatch {
  /**
   * Runs `task` with a signal that aborts (reason: an Error naming the growth) when the process's RSS has grown by
   * more than the limit since the first of the currently running tasks began. Sampling runs only while at least
   * one task does.
   * @returns what `task` returns; rejects with what it rejects with
   */
  track<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** How {@link createRssWatch} samples. */
export interface RssWatchOptions {
  /** bytes of RSS growth allowed over the baseline */
  limitBytes: number;
  /** ms between samples (default 20: memory can grow by ~1 GB/s inflating a bomb) */
  intervalMs?: number;
  /** the reading, bytes (default `process.memoryUsage.rss`, a cheap read of the kernel's figure) */
  rss?: () => number;
}

/**
 * A watch with no timer until a task starts and none once the last one ends, so an idle server samples nothing.
 * After a trip the next tasks get a fresh signal but the same baseline: while the process stays that large, they
 * are aborted too, until no task runs and the baseline is taken again.
 */
export function createRssWatch(options: RssWatchOptions): RssWatch {
  const rss = options.rss ?? (() => process.memoryUsage.rss());
  const intervalMs = options.intervalMs ?? 20;
  let active = 0;
  let baseline = 0;
  let controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;

  const sample = () => {
    const grown = rss() - baseline;
    if (grown <= options.limitBytes) return;
    controller.abort(new Error(`process grew by ${Math.round(grown / 1048576)} MiB while extracting (limit ${Math.round(options.limitBytes / 1048576)} MiB)`));
    controller = new AbortController();
  };

  return {
    async track(task) {
      if (active++ === 0) {
        baseline = rss();
        controller = new AbortController();
        timer = setInterval(sample, intervalMs);
        timer.unref();
      }
      try {
        return await task(controller.signal);
      } finally {
        if (--active === 0) clearInterval(timer);
      }
    },
  };
}
