import type { Logger } from 'pino';
import type { BotWsReplier, BotWsStreamFrame } from './ws-replier.js';
import type { BotStreams, StreamSnapshot } from './streams.js';

/** How often a pump reads the stream from the store, ms: the job may run in another process (no local notice). */
export const PUMP_POLL_MS = 250;
/**
 * While the agent is slow and nothing new has shown for this long, ms, the current snapshot is sent again: WeCom gets
 * no refresh polls on a long connection, so a frame now and then is what tells it the stream is alive.
 */
export const PUMP_KEEPALIVE_MS = 30_000;
/** A pump gives up after this, ms: past WeCom's 6-minute stream window nothing can be sent on the req_id anyway. */
export const PUMP_MAX_MS = 7 * 60_000;

/**
 * Long connection: carries one stream's snapshots (written by the job, in this or another process) to WeCom as
 * `aibot_respond_msg` frames on the callback's req_id, until the frame with `finish:true`; an answer that came after
 * the stream had closed (`followUp`) goes out with `aibot_send_msg` to `chatid`. Frames go one at a time (the SDK
 * waits for each ack); while one is in flight only the newest snapshot is kept, so a slow ack never queues a frame
 * per token. Local writes wake it at once; a store read every PUMP_POLL_MS covers writes in other processes.
 * Never throws: a refused or lost frame is logged (the next snapshot is tried; the final one ends the pump).
 * @param chatid where a follow-up goes: the group's chatid, or the userid in a 1:1 chat
 */
export function pumpStream(o: {
  streams: BotStreams;
  streamId: string;
  replier: BotWsReplier;
  chatid: string;
  log: Logger;
  pollMs?: number;
  maxMs?: number;
  keepAliveMs?: number;
}): Promise<void> {
  return new Promise((resolve) => {
    let sentSeq = -1;
    let sentContent: string | null = null;
    let sentFinal = false;
    let sentAt = performance.now();
    const keepAliveMs = o.keepAliveMs ?? PUMP_KEEPALIVE_MS;
    let sending = false;
    let latest: StreamSnapshot | null = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(poll);
      clearTimeout(giveUp);
      unwatch();
      resolve();
    };
    const send = async () => {
      if (sending || done || !latest) return;
      const s = latest;
      const keepAlive = !s.finish && performance.now() - sentAt >= keepAliveMs;
      if (!keepAlive && (s.seq <= sentSeq || (!s.finish && !s.followUp && s.content === sentContent))) return;
      // The final frame went out already (handover): only the follow-up is left to send.
      if (sentFinal && !s.followUp) return;
      sending = true;
      try {
        if (s.followUp) {
          await o.replier.sendMarkdown(o.chatid, s.followUp);
          o.log.info('rest of the answer sent with aibot_send_msg');
          return finish();
        }
        const frame: BotWsStreamFrame = { id: o.streamId, finish: s.finish, content: s.content, ...(s.finish && s.msg_item?.length ? { msg_item: s.msg_item } : {}) };
        await o.replier.stream(frame);
        sentAt = performance.now();
        sentSeq = s.seq;
        sentContent = s.content;
        sentFinal = s.finish;
        // Closed at the handover: the whole answer follows as `followUp`.
        if (s.finish && !s.awaitingFollowUp) return finish();
      } catch (e) {
        o.log.warn({ err: { message: e instanceof Error ? e.message : String(e) }, final: s.finish }, 'stream frame not delivered');
        // A refused final frame (the req_id expired, the connection moved) cannot be retried on this req_id.
        if (s.finish && !s.followUp) return finish();
      } finally {
        sending = false;
      }
      // Something newer arrived while this frame was in flight.
      if (latest && latest.seq > sentSeq) void send();
    };
    const offer = (s: StreamSnapshot | null) => {
      if (!s || (latest && s.seq <= latest.seq)) return;
      latest = s;
      void send();
    };
    const unwatch = o.streams.watch(o.streamId, offer);
    const poll = setInterval(() => {
      o.streams.get(o.streamId).then(offer, () => undefined);
      if (!sending && latest && performance.now() - sentAt >= keepAliveMs) void send();
    }, o.pollMs ?? PUMP_POLL_MS);
    const giveUp = setTimeout(() => {
      o.log.warn('stream not finished within the window; the pump stops');
      finish();
    }, o.maxMs ?? PUMP_MAX_MS);
    o.streams.get(o.streamId).then(offer, () => undefined);
  });
}
