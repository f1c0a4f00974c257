import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { createBotStreams, type StreamSnapshot } from '../../src/channels/wecom-bot/streams.js';
import type { BotWsReplier, BotWsStreamFrame } from '../../src/channels/wecom-bot/ws-replier.js';
import { pumpStream } from '../../src/channels/wecom-bot/ws-pump.js';
import { createMemoryStore } from '../../src/store/memory.js';

/** A replier that records what it was asked to send; each frame's ack takes `ackMs`. */
function recordingReplier(ackMs: number) {
  const frames: BotWsStreamFrame[] = [];
  const markdown: Array<{ chatid: string; content: string }> = [];
  const replier: BotWsReplier = {
    stream: async (f) => {
      frames.push(f);
      await new Promise((r) => setTimeout(r, ackMs));
    },
    welcome: async () => undefined,
    sendMarkdown: async (chatid, content) => void markdown.push({ chatid, content }),
    uploadImage: async () => 'media',
    replyImage: async () => undefined,
    download: async () => ({ data: Buffer.alloc(0) }),
  };
  return { frames, markdown, replier };
}

const snap = (content: string, seq: number, extra: Partial<StreamSnapshot> = {}): StreamSnapshot => ({ botId: 'b', content, finish: false, createdAtMs: 0, seq, ...extra });
const log = pino({ level: 'silent' });

describe('long-connection pump', () => {
  it('sends one frame at a time, only the newest snapshot while an ack is pending, and stops after the final frame', async () => {
    const streams = createBotStreams(createMemoryStore());
    await streams.begin('s', snap('…', 1));
    const r = recordingReplier(50);
    const done = pumpStream({ streams, streamId: 's', replier: r.replier, chatid: 'u', log, pollMs: 20 });
    await new Promise((res) => setTimeout(res, 5));
    for (let i = 2; i <= 60; i++) {
      await streams.put('s', snap('x'.repeat(i), i));
      await new Promise((res) => setTimeout(res, 2));
    }
    await streams.put('s', snap('final', 61, { finish: true }));
    await done;
    expect(r.frames[0]).toMatchObject({ content: '…', finish: false });
    expect(r.frames.at(-1)).toMatchObject({ content: 'final', finish: true });
    // ~60 snapshots over ~150 ms with 50 ms acks: a handful of frames, not one per snapshot.
    expect(r.frames.length).toBeLessThan(10);
    const lengths = r.frames.slice(1, -1).map((f) => f.content.length);
    expect([...lengths].sort((a, b) => a - b)).toEqual(lengths);
  });

  it('resends the current snapshot as a keep-alive while nothing new shows', async () => {
    const streams = createBotStreams(createMemoryStore());
    await streams.begin('k', snap('thinking', 1));
    const r = recordingReplier(1);
    const done = pumpStream({ streams, streamId: 'k', replier: r.replier, chatid: 'u', log, pollMs: 20, keepAliveMs: 100 });
    await new Promise((res) => setTimeout(res, 350));
    await streams.put('k', snap('done', 2, { finish: true }));
    await done;
    const thinking = r.frames.filter((f) => f.content === 'thinking');
    expect(thinking.length).toBeGreaterThanOrEqual(3);
    expect(thinking.length).toBeLessThanOrEqual(5);
  });

  it('after a handover keeps going until the follow-up, which goes out with aibot_send_msg', async () => {
    const streams = createBotStreams(createMemoryStore());
    await streams.begin('h', snap('partial', 1));
    const r = recordingReplier(1);
    const done = pumpStream({ streams, streamId: 'h', replier: r.replier, chatid: 'wrGroup', log, pollMs: 20 });
    await streams.put('h', snap('partial\n\n（note）', 2, { finish: true, awaitingFollowUp: true }));
    await new Promise((res) => setTimeout(res, 60));
    await streams.put('h', snap('partial\n\n（note）', 3, { finish: true, awaitingFollowUp: true, followUp: 'whole answer' }));
    await done;
    expect(r.frames.filter((f) => f.finish)).toHaveLength(1);
    expect(r.markdown).toEqual([{ chatid: 'wrGroup', content: 'whole answer' }]);
  });
});
