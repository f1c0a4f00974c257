/**
 * The parent's handle on the OA stand-in process (mp-child.ts): starts it and turns its IPC commands into calls.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PacedRequest } from './paced.js';

const CHILD = fileURLToPath(new URL('./mp-child.ts', import.meta.url));

/** Answers the fake OA API received for one tag's customers. Times are epoch ms (NaN: no answer yet). */
export interface SentCount {
  /** customers that got at least one custom/send */
  customers: number;
  /** customers that got a text starting with the expected prefix (the agent's answer, not REPLY_ON_*) */
  matching: number;
  /** the most frequent other texts sent (first 20 characters) and how many times each was sent */
  others: Array<[string, number]>;
  firstAt: number;
  lastAt: number;
}

/** The running stand-in. */
export interface MpSide {
  /** the fake OA API, `http://127.0.0.1:PORT` (WECHAT_MP_API_BASE_URL) */
  apiUrl: string;
  /**
   * `count` distinct signed, encrypted text callbacks from customers `o<tag>_0…`, each customer marked as having
   * just written. `tag`: letters and digits only (it prefixes the OpenIDs `sent` counts by).
   */
  callbacks(tag: string, count: number): Promise<PacedRequest[]>;
  /** What `tag`'s customers were sent so far; `expect` is the prefix of a real answer. */
  sent(tag: string, expect: string): Promise<SentCount>;
  close(): void;
}

/** Forks mp-child.ts (through tsx) and waits for its fake OA API to listen. */
export async function startMpSide(): Promise<MpSide> {
  // advanced: structured clone keeps NaN and moves the thousands of prebuilt callbacks faster than JSON.
  const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
  const apiUrl = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url: string }) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`mp-child exited (${code})`)));
  });
  let next = 0;
  const call = <T>(cmd: Record<string, unknown>): Promise<T> => {
    const id = ++next;
    return new Promise<T>((resolve) => {
      const onMessage = (m: { id?: number }) => {
        if (m.id !== id) return;
        child.off('message', onMessage);
        resolve(m as T);
      };
      child.on('message', onMessage);
      child.send({ ...cmd, id });
    });
  };
  return {
    apiUrl,
    callbacks: async (tag, count) => (await call<{ requests: PacedRequest[] }>({ cmd: 'callbacks', tag, count })).requests,
    sent: (tag, expect) => call<SentCount>({ cmd: 'sent', tag, expect }),
    close: () => void child.send({ cmd: 'exit' }),
  };
}
