import type { JobHandler } from './job-queue.js';
import type { JobPayload } from './jobs.js';

/**
 * One queue serves every channel: a job goes to its channel's handler. A job of a channel that is not configured
 * in this process (e.g. written before a restart with another .env) is logged and finished rather than retried
 * for days.
 */
export function dispatchByChannel(handlers: Partial<Record<JobPayload['channel'], JobHandler>>): JobHandler {
  return {
    run: async (ctx) => {
      const handler = handlers[ctx.payload.channel];
      if (handler) return handler.run(ctx);
      ctx.log.error({ channel: ctx.payload.channel }, 'no handler for this job (channel not configured); dropping it');
    },
    giveUp: async (ctx, cause) => handlers[ctx.payload.channel]?.giveUp(ctx, cause),
  };
}
