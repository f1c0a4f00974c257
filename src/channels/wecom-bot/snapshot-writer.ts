import type { BotStreams, StreamImage, StreamSnapshot } from './streams.js';

/** What a job writes into its stream as the agent answers. */
export interface SnapshotWriter {
  /**
   * The visible answer so far. The first text is written at once (it is what the customer waits for), later ones
   * at most once per `throttleMs` (WeCom polls about once a second; a write per token would only load the store).
   * Never throws: a failed provisional write is logged by the caller's next `finish`, which is what counts.
   */
  update(content: string): void;
  /** Writes the final frame (after any pending update) and stops updating. @throws when the store write fails */
  finish(content: string, images?: StreamImage[], o?: { awaitingFollowUp?: boolean }): Promise<void>;
  /** The last content written (or queued), '' before any. */
  readonly shown: string;
}

/**
 * @param o.prepare turns the agent's snapshot into what the bot shows (sanitised markdown cut to 20480 bytes)
 * @param o.throttleMs minimum ms between provisional writes after the first
 */
export function createSnapshotWriter(o: {
  streams: BotStreams;
  streamId: string;
  botId: string;
  createdAtMs: number;
  throttleMs: number;
  prepare: (content: string) => string;
  onError?: (e: unknown) => void;
}): SnapshotWriter {
  // Monotonic across a re-run in another process too (a reader only compares, but never sees one go back).
  let seq = Date.now();
  let shown = '';
  let pending: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastWriteAt = 0;
  let done = false;
  // Writes of one stream go one after another, so an older snapshot never lands after a newer one.
  let chain: Promise<void> = Promise.resolve();
  const write = (content: string, finish: boolean, images?: StreamImage[], awaitingFollowUp?: boolean): Promise<void> => {
    seq += 1;
    const snapshot: StreamSnapshot = {
      botId: o.botId,
      content,
      finish,
      createdAtMs: o.createdAtMs,
      seq,
      ...(images?.length ? { msg_item: images } : {}),
      ...(awaitingFollowUp ? { awaitingFollowUp } : {}),
    };
    lastWriteAt = performance.now();
    const next = chain.then(() => o.streams.put(o.streamId, snapshot));
    chain = next.catch((e: unknown) => o.onError?.(e));
    return next;
  };
  // The agent's snapshots are prepared (sanitised, cut) only when written: preparing per token would cost
  // O(n²) over a long answer.
  const flush = () => {
    timer = null;
    if (done || pending === null) return;
    const content = o.prepare(pending);
    pending = null;
    if (!content || content === shown) return;
    shown = content;
    void write(content, false).catch(() => undefined);
  };
  return {
    get shown() {
      return shown;
    },
    update: (raw) => {
      if (done) return;
      pending = raw;
      if (timer) return;
      const waitMs = lastWriteAt === 0 ? 0 : o.throttleMs - (performance.now() - lastWriteAt);
      if (waitMs <= 0) flush();
      else timer = setTimeout(flush, waitMs);
    },
    finish: async (content, images, f) => {
      done = true;
      if (timer) clearTimeout(timer);
      timer = null;
      pending = null;
      shown = content;
      await chain;
      await write(content, true, images, f?.awaitingFollowUp);
    },
  };
}
