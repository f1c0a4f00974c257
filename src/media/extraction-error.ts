/**
 * Why an extraction in the pool produced nothing (the content itself may be fine):
 * - `extraction_timeout`: it ran longer than its wall-clock limit, or did not start in time; its thread was killed
 * - `extraction_memory`: its thread passed its heap limit, or the process grew past the RSS limit meanwhile
 * - `extraction_busy`: the pool's queue was full
 * - `extraction_closed`: the pool was closed (shutdown)
 * - `extraction_failed`: anything else (a worker that crashed or could not start)
 */
export type ExtractionFailure = 'extraction_timeout' | 'extraction_memory' | 'extraction_busy' | 'extraction_closed' | 'extraction_failed';

/** An extraction the pool gave up on. Branch on `reason`; the message names no content. */
export class ExtractionError extends Error {
  override readonly name = 'ExtractionError';
  constructor(
    readonly reason: ExtractionFailure,
    message: string,
  ) {
    super(message);
  }
}
