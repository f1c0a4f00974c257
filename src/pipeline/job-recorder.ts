import type { InboundSettlement, InboundStatus, OutboundKind, OutboundStatus } from '../log/types.js';
import type { JobProgress, ReplyKind } from './jobs.js';
import { NO_RECORDER, type MessagePlace, type MessageRecorder } from './recorder.js';

/** A MessageRecorder bound to one job's customer and inbound message: what a channel's job handler calls. */
export interface JobRecorder {
  settle(change: InboundSettlement): void;
  outbound(m: { partId: string; kind: OutboundKind; content: string; status: OutboundStatus; errcode?: number | null; agent?: string | null }): void;
  failed(m: { msgid: string; parts: string[]; sent: number; partIds: string[]; errcode: number | null; reason: string }): void;
}

/** Binds `rec` (none: records nothing) to a job's place and inbound msgid. */
export function bindRecorder(rec: MessageRecorder | undefined, place: MessagePlace & { channel: 'kf' | 'mp' }, msgid: string): JobRecorder {
  const r = rec ?? NO_RECORDER;
  return {
    settle: (change) => r.settle({ ...place, msgid }, change),
    outbound: (m) => r.outbound({ ...place, ...m, replyTo: msgid }),
    failed: (m) => r.failed({ ...place, ...m }),
  };
}

/** The inbound status a finished reply of this kind gives its message. */
export function statusOf(kind: ReplyKind): InboundStatus {
  return kind === 'answer' ? 'answered' : kind === 'welcome' ? 'answered' : kind;
}

/** The LLM figures a job's plan carries, for `settle`. */
export function llmSettlement(progress: JobProgress | null | undefined): Omit<InboundSettlement, 'status'> {
  const llm = progress?.llm;
  return llm ? { agent: llm.agent, latencyMs: llm.latencyMs, inputTokens: llm.inputTokens, outputTokens: llm.outputTokens } : {};
}
