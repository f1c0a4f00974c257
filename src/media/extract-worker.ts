/**
 * The worker side of the extraction pool (extract-pool.ts): piscina imports this file in a worker thread and calls
 * its default export once per task. Everything CPU- or memory-hungry about customer content happens here, under
 * the thread's heap limit and the pool's wall-clock limit, which terminates this thread when it is passed.
 */
import { parentPort } from 'node:worker_threads';
import { formatAnswer } from '../format/format-answer.js';
import { TASK_STARTED, type ExtractOutcome, type ExtractTask } from './extract-task.js';
import { extractFileText, FileTextError } from './file-text.js';
import { pageBodyToText } from './page-body-text.js';

/**
 * Runs one task.
 * @returns the page's or file's text, or `{ ok: false, reason }` for a file extractFileText refuses
 * @throws only on a bug (the pool reports it as `extraction_failed`)
 */
export default async function extract(task: ExtractTask): Promise<ExtractOutcome> {
  parentPort?.postMessage({ [TASK_STARTED]: task.id });
  if (task.kind === 'format') return { ok: true, kind: 'format', answer: formatAnswer(task) };
  // Structured clone delivers a Uint8Array; a Buffer view over the same memory, no copy.
  const body = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
  if (task.kind === 'page') return { ok: true, kind: 'page', page: pageBodyToText(body, task.contentType, task.maxChars) };
  try {
    const file = await extractFileText(body, {
      filename: task.filename,
      contentType: task.contentType,
      maxChars: task.maxChars,
      ...(task.maxPages !== undefined ? { maxPages: task.maxPages } : {}),
    });
    return { ok: true, kind: 'file', file };
  } catch (e) {
    if (e instanceof FileTextError) return { ok: false, reason: e.reason, message: e.message };
    throw e;
  }
}
