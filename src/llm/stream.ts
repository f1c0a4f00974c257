import type { Readable } from 'node:stream';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { LlmError } from '../errors.js';

/**
 * Reads an HTTP body chunk by chunk with an idle timer: if no byte arrives for `idleMs`, the body is destroyed
 * with a retryable `upstream` LlmError. Aborting `signal` destroys it too (the socket closes, the provider sees
 * the client go away). Errors thrown by `onChunk` stop the read and propagate; `isFinished` returning true after
 * a chunk ends the read early (the provider's terminal event arrived).
 * @param idleMs longest silence between two chunks, ms
 * @throws whatever destroyed the stream: LlmError (idle), the signal's reason, or a socket error
 */
export async function readBody(
  body: Readable,
  opts: { signal: AbortSignal; idleMs: number; onChunk: (text: string) => void; isFinished?: () => boolean },
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      body.destroy(new LlmError('upstream', `no data for ${opts.idleMs} ms`, { retryable: true }));
    }, opts.idleMs);
  };
  const onAbort = () => body.destroy(opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted'));
  if (opts.signal.aborted) onAbort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  body.setEncoding('utf8');
  arm();
  try {
    for await (const chunk of body) {
      arm();
      opts.onChunk(chunk as string);
      // A provider that keeps the connection open after its terminal event must not turn a complete answer into
      // an idle timeout; leaving the loop closes the body.
      if (opts.isFinished?.()) break;
    }
  } catch (e) {
    body.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
    opts.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Server-sent events over `readBody`, parsed by eventsource-parser (spec-compliant framing: CRLF, split frames,
 * comments such as `: keep-alive`).
 */
export async function readSse(
  body: Readable,
  opts: { signal: AbortSignal; idleMs: number; onEvent: (event: EventSourceMessage) => void; isFinished?: () => boolean },
): Promise<void> {
  const parser = createParser({ onEvent: opts.onEvent });
  await readBody(body, { ...opts, onChunk: (t) => parser.feed(t) });
}

/**
 * Reads a whole (non-streamed) answer body as UTF-8 text over `readBody`: the idle timer and `signal` apply while it
 * arrives, and a body longer than `maxBytes` is refused (the read stops there).
 * @param idleMs longest silence between two chunks, ms
 * @param maxBytes most UTF-8 bytes accepted
 * @throws LlmError `protocol` (not retryable) past `maxBytes`, naming `provider`; otherwise what `readBody` throws
 */
export async function readText(
  body: Readable,
  provider: string,
  opts: { signal: AbortSignal; idleMs: number; maxBytes: number },
): Promise<string> {
  let text = '';
  let bytes = 0;
  await readBody(body, {
    signal: opts.signal,
    idleMs: opts.idleMs,
    onChunk: (chunk) => {
      bytes += Buffer.byteLength(chunk);
      if (bytes > opts.maxBytes) throw new LlmError('protocol', `${provider}: answer longer than ${opts.maxBytes} bytes`);
      text += chunk;
    },
  });
  return text;
}

/** Reads at most `maxBytes` of a (usually error) body as text; the rest is discarded. */
export async function readCapped(body: Readable, maxBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      if (size + buf.length > maxBytes) {
        chunks.push(buf.subarray(0, maxBytes - size));
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
  } catch {
    // a body cut short still tells us what it had
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}
