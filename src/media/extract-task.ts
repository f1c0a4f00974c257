/**
 * What crosses the thread boundary of the extraction pool: the tasks the event loop sends and the outcomes the
 * worker (extract-worker.ts) returns. Types only, plus the marker of the worker's "task started" message, so the
 * pool's side never loads the extractors (html-to-text, pdf.js) onto the main thread.
 */
import type { FormatInput, FormattedAnswer } from '../format/format-answer.js';
import type { FileText, FileTextErrorReason } from './file-text.js';
import type { PageText } from './page-body-text.js';

/** A fetched page body to turn into text (pageBodyToText). */
export interface PageTask {
  kind: 'page';
  /** the pool's task number, echoed in the started message */
  id: number;
  /** the body as fetched; arrives in the worker as a Uint8Array copy */
  body: Uint8Array;
  contentType: string | null;
  /** characters of text kept */
  maxChars: number;
}

/** A customer's file to turn into text (extractFileText). */
export interface FileTask {
  kind: 'file';
  id: number;
  body: Uint8Array;
  filename: string | null;
  contentType: string | null;
  maxChars: number;
  /** PDF pages read at most (extractFileText's default when absent) */
  maxPages?: number;
}

/** A long answer to convert and split (formatAnswer): an LLM or echo answer may carry a customer's text. */
export interface FormatTask extends FormatInput {
  kind: 'format';
  id: number;
}

export type ExtractTask = PageTask | FileTask | FormatTask;

/**
 * The worker's answer. A file the extractor refuses is an outcome, not a thrown error: errors lose their class
 * when they cross threads, and the reason is what the caller needs.
 */
export type ExtractOutcome =
  | { ok: true; kind: 'page'; page: PageText }
  | { ok: true; kind: 'file'; file: FileText }
  | { ok: true; kind: 'format'; answer: FormattedAnswer }
  | { ok: false; reason: FileTextErrorReason; message: string };

/**
 * Key of the message a worker posts on its parentPort as it begins a task (`{ [TASK_STARTED]: id }`): the pool
 * starts that task's wall-clock limit then, so time in the queue and a worker's start-up are not charged to it.
 */
export const TASK_STARTED = 'wechatAiBridgeExtractStarted';
