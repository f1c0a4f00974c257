import type { Readable } from 'node:stream';
import { readBody } from './stream.js';

/**
 * Newline-delimited JSON (Ollama's native stream) over `readBody` (idle timer, abort). A line may arrive split
 * across chunks and a chunk may hold several lines; `\r\n` endings and blank lines are accepted. Our own code:
 * the framing is one split on `\n`, which a dependency would not make simpler.
 * @param onLine gets each complete, trimmed, non-empty line (not yet parsed)
 */
export async function readNdjson(
  body: Readable,
  opts: { signal: AbortSignal; idleMs: number; onLine: (line: string) => void; isFinished?: () => boolean },
): Promise<void> {
  let buffered = '';
  await readBody(body, {
    ...opts,
    onChunk: (text) => {
      buffered += text;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) opts.onLine(line);
        if (opts.isFinished?.()) return;
        nl = buffered.indexOf('\n');
      }
    },
  });
  // A last line without a trailing newline still counts (and a stream cut mid-line is caught by the caller's
  // missing terminal line).
  const last = buffered.trim();
  if (last && !opts.isFinished?.()) opts.onLine(last);
}
