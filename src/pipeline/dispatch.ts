import type { JobPayload } from './jobs.js';
import type { JobHandler } from './runner.js';

/**
 * One runner serves every channel: a job goes to its channel's handler. A job of a channel that is not
 * configured in this process (e.g. written before a restart with another .env) is logged and finished rather
 * than retried for days.
 */
export function dispatchByChannel(handlers: Partial<Record<JobPayload['channel'], JobHandler>>): JobHandler {
  return async (ctx) => {
    const handle = handlers[ctx.payload.channel];
    if (handle) return handle(ctx);
    ctx.log.error({ channel: ctx.payload.channel }, 'no handler for this job (channel not configured); dropping it');
  };
}
