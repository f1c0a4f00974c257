import type { Logger } from 'pino';
import type { Metrics } from '../../metrics.js';
import { inboundSummary } from '../../pipeline/inbound-summary.js';
import type { JobQueue } from '../../pipeline/job-queue.js';
import { jobId } from '../../pipeline/jobs.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import { errorSummary } from '../../error-summary.js';
import { botUserKey, readBotInbound, toBotJob } from './inbound.js';
import { BOT_PLACEHOLDER } from './routes.js';
import type { BotStreams } from './streams.js';
import type { BotWsCallback } from './ws-connections.js';
import { pumpStream } from './ws-pump.js';

/**
 * What the connection's holder does with each frame WeCom pushes over a bot's long connection (wecom-aibot-protocol.md
 * §9): a message is handed off like a callback-mode message (same job, same dedup by msgid, mode `websocket`), its
 * stream begun with the placeholder, and a pump carries the snapshots to WeCom on the frame's req_id; a repeated
 * msgid pumps the existing stream (never a second job); `enter_chat` gets the welcome within WeCom's 5 s.
 * Unreadable frames are logged and dropped (there is no status to answer on a socket).
 */
export function createBotWsInbound(d: {
  streams: BotStreams;
  jobs: Pick<JobQueue, 'handOff'>;
  metrics: Metrics;
  log: Logger;
  welcomeOf(botId: string): string | null;
  /** the routed agent's REPLY_ON_ERROR */
  replyOnError(botId: string): string;
  recorder?: MessageRecorder;
  /** pump's store poll, ms (tests) */
  pollMs?: number;
}): (cb: BotWsCallback) => void {
  const handle = async (cb: BotWsCallback) => {
    const log = d.log.child({ channel: 'bot', bot: cb.botId });
    const inbound = readBotInbound(cb.body);
    d.metrics.callbacks.inc({ channel: 'bot', outcome: cb.kind === 'event' ? 'event' : 'accepted' });
    if (inbound.kind === 'refresh') return; // never sent on a long connection
    if (inbound.kind === 'event') {
      if (inbound.eventtype !== 'enter_chat') return;
      const welcome = d.welcomeOf(cb.botId);
      if (!welcome) return;
      await cb.replier.welcome(welcome);
      d.metrics.replies.inc({ channel: 'bot', kind: 'welcome' });
      d.recorder?.outbound({ channel: 'bot', account: cb.botId, externalId: botUserKey(inbound.userid, inbound.chatid), partId: `w-${inbound.msgid || cb.reqId}`, kind: 'welcome', content: welcome, status: 'sent' });
      return;
    }
    const receivedAtMs = Date.now();
    const job = toBotJob(inbound, { botId: cb.botId, mode: 'websocket', receivedAtMs });
    const user = botUserKey(job.userid, job.chatid);
    let created: boolean | undefined;
    try {
      await d.streams.begin(job.streamId, { botId: cb.botId, content: BOT_PLACEHOLDER, finish: false, createdAtMs: receivedAtMs, seq: 1 });
      [created] = await d.jobs.handOff([{ id: jobId('bot', cb.botId, user, job.msgid), payload: JSON.stringify(job) }]);
    } catch (e) {
      // Nobody retries a frame pushed on a socket: the person is told now rather than left with a spinner.
      log.error({ err: errorSummary(e), msgid: job.msgid }, 'store unavailable: message not handed off; answered with REPLY_ON_ERROR');
      d.metrics.replies.inc({ channel: 'bot', kind: 'fallback' });
      await cb.replier.stream({ id: job.streamId, finish: true, content: d.replyOnError(cb.botId) });
      return;
    }
    if (created) {
      const summary = inboundSummary(job);
      if (summary) d.recorder?.inbound({ channel: 'bot', account: cb.botId, externalId: user, msgid: job.msgid, ...summary, atMs: receivedAtMs });
    } else {
      d.metrics.dedupHits.inc({ channel: 'bot' });
      log.info({ msgid: job.msgid }, 'repeated msgid on the long connection: its stream is sent again, no new answer');
    }
    await pumpStream({ streams: d.streams, streamId: job.streamId, replier: cb.replier, chatid: job.chatid ?? job.userid, log: log.child({ msgid: job.msgid }), ...(d.pollMs ? { pollMs: d.pollMs } : {}) });
  };
  return (cb) => {
    handle(cb).catch((e: unknown) => d.log.warn({ channel: 'bot', bot: cb.botId, err: errorSummary(e) }, 'long-connection frame not handled'));
  };
}
