import { EventEmitter } from 'node:events';
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

/** One image of a finished stream frame (wecom-aibot-protocol.md §4): the raw bytes' base64 and hex MD5. */
export interface StreamImage {
  msgtype: 'image';
  image: { base64: string; md5: string };
}

/** The newest state of one answer stream, as a refresh (or the long-connection pump) shows it. */
export interface StreamSnapshot {
  /** the bot the stream belongs to (a refresh through another bot's URL is not shown it) */
  botId: string;
  /** the whole text so far (markdown), ≤ 20480 UTF-8 bytes */
  content: string;
  finish: boolean;
  /** images, only once finished (≤ 10) */
  msg_item?: StreamImage[];
  /** epoch ms of the customer's message (the 6-minute window) */
  createdAtMs: number;
  /**
   * long connection: an answer that came after the stream had closed (the ~5.5-minute handover); the connection's
   * holder sends it with `aibot_send_msg`
   */
  followUp?: string;
  /** finished at the handover while the agent was still writing: the whole answer follows (`followUp`) */
  awaitingFollowUp?: boolean;
  /** bumped on every write, so a reader can tell a new snapshot from the one it showed */
  seq: number;
}

/** How long a stream's snapshot is kept: past WeCom's 6-minute polling window, with room for its retries. */
export const STREAM_TTL_MS = 15 * 60_000;

/**
 * Answer-stream snapshots in the store (`bot:stream:<id>`), so that a refresh landing on any replica reads what the
 * job wrote in any process. Writers in this process also notify local readers at once (the long-connection pump),
 * which saves them a store read per tick.
 */
export interface BotStreams {
  /** Writes the first snapshot unless the stream exists. @returns whether it was new */
  begin(streamId: string, snapshot: StreamSnapshot): Promise<boolean>;
  /** @returns the snapshot, or null when unknown or expired */
  get(streamId: string): Promise<StreamSnapshot | null>;
  /** Replaces the snapshot (the caller keeps writes of one stream in order) and notifies local watchers. */
  put(streamId: string, snapshot: StreamSnapshot): Promise<void>;
  /** Calls `fn` after every `put` of this stream in this process. @returns unsubscribe */
  watch(streamId: string, fn: (snapshot: StreamSnapshot) => void): () => void;
}

/** @param store where snapshots live (Redis: shared by every replica; memory: this process) */
export function createBotStreams(store: Store): BotStreams {
  const local = new EventEmitter();
  local.setMaxListeners(0);
  return {
    begin: (id, s) => store.setIfAbsent(keys.botStream(id), JSON.stringify(s), STREAM_TTL_MS),
    get: async (id) => parseSnapshot(await store.get(keys.botStream(id))),
    put: async (id, s) => {
      await store.set(keys.botStream(id), JSON.stringify(s), STREAM_TTL_MS);
      local.emit(id, s);
    },
    watch: (id, fn) => {
      local.on(id, fn);
      return () => local.off(id, fn);
    },
  };
}

function parseSnapshot(raw: string | null): StreamSnapshot | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as StreamSnapshot;
    return typeof v.content === 'string' && typeof v.finish === 'boolean' && typeof v.botId === 'string' ? v : null;
  } catch {
    return null;
  }
}
