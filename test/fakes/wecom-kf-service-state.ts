/**
 * Conversation state of the fake WeCom kf API (docs/protocols.md kf §4, §2.5, §3.2): per
 * (open_kfid, external_userid) the `service_state` 0..4, the servicer holding it, and the `msg_code`s that
 * `service_state/trans` and servicer events hand out for `send_msg_on_event`. No I/O and no request parsing: the
 * caller (KfState in wecom-kf-state.ts) validates request bodies and wraps errors into WeCom answers.
 *
 * States: 0 new (customer just wrote), 1 bot, 2 queue, 3 human servicer, 4 ended / not started.
 * Allowed `trans` moves: 0→1|2|3, 1→2|3, 2→3, 3→3 (another servicer)|4, 4→none.
 *
 * Units: every time here is epoch milliseconds from Date.now() (so `vi.useFakeTimers()` moves it).
 */
import { randomBytes } from 'node:crypto';
import type { ApiError } from './wecom-kf-state.js';

export type ServiceState = 0 | 1 | 2 | 3 | 4;
/** What produced a msg_code: moved to the queue (2), to a servicer (3), or ended (4). */
export type MsgCodeKind = 'queue' | 'servicer' | 'ended';

/** How long a msg_code may be used (kf §3.2): 48 h for queue/servicer codes, 20 s for the goodbye code. */
export const MSG_CODE_TTL_MS: Record<MsgCodeKind, number> = {
  queue: 48 * 3600_000,
  servicer: 48 * 3600_000,
  ended: 20_000,
};
/** msgtypes send_msg_on_event accepts per code kind (kf §3.2): text only, except text|msgmenu for the goodbye. */
export const MSG_CODE_TYPES: Record<MsgCodeKind, ReadonlySet<string>> = {
  queue: new Set(['text']),
  servicer: new Set(['text']),
  ended: new Set(['text', 'msgmenu']),
};
const CODE_STATE: Record<MsgCodeKind, ServiceState> = { queue: 2, servicer: 3, ended: 4 };
const ALLOWED_MOVES: Record<ServiceState, readonly ServiceState[]> = { 0: [1, 2, 3], 1: [2, 3], 2: [3], 3: [3, 4], 4: [] };

/** `session_status_change.change_type` (kf §2.5). */
export const CHANGE_TYPE = { fromQueue: 1, transferred: 2, ended: 3, reopened: 4 } as const;

interface Conversation {
  state: ServiceState;
  servicer?: string;
  /** increases with every new conversation (a customer message after state 4), so old codes die with it */
  epoch: number;
  gotQueueCode: boolean;
  gotServicerCode: boolean;
}

interface MsgCode {
  kind: MsgCodeKind;
  open_kfid: string;
  external_userid: string;
  epoch: number;
  expires: number;
  used: boolean;
}

const key = (kfid: string, user: string): string => `${kfid}\u0000${user}`;

/** msg_codes look like welcome codes: 43 characters of base64url. */
const newCode = (): string => randomBytes(32).toString('base64url');

/** Per-conversation service_state, servicer and msg_codes of one fake instance. */
export class KfConversations {
  private readonly convs = new Map<string, Conversation>();
  private readonly codes = new Map<string, MsgCode>();
  private epochs = 0;
  /** userids currently receiving (a `trans` to state 3 must name one of them). */
  servicers: Set<string>;

  constructor(servicers: readonly string[]) {
    this.servicers = new Set(servicers);
  }

  /** A customer message (origin 3): an unknown or ended (4) conversation starts anew in state 0; others keep theirs. */
  customerWrote(kfid: string, user: string): void {
    const c = this.convs.get(key(kfid, user));
    if (c !== undefined && c.state !== 4) return;
    this.epochs += 1;
    this.convs.set(key(kfid, user), { state: 0, epoch: this.epochs, gotQueueCode: false, gotServicerCode: false });
  }

  /** An enter_session event: a pair never seen before becomes known in state 4 ("not started"). */
  entered(kfid: string, user: string): void {
    if (this.convs.has(key(kfid, user))) return;
    this.epochs += 1;
    this.convs.set(key(kfid, user), { state: 4, epoch: this.epochs, gotQueueCode: false, gotServicerCode: false });
  }

  /** The current state, or undefined when the fake never saw this customer on this kf account. */
  get(kfid: string, user: string): { service_state: ServiceState; servicer_userid?: string } | undefined {
    const c = this.convs.get(key(kfid, user));
    if (c === undefined) return undefined;
    return c.state === 3 && c.servicer !== undefined ? { service_state: 3, servicer_userid: c.servicer } : { service_state: c.state };
  }

  /** send_msg gate: 95018 "send msg session status invalid" unless the conversation is in state 0 or 1. */
  checkSend(kfid: string, user: string): ApiError | null {
    const c = this.convs.get(key(kfid, user));
    if (c === undefined || c.state === 0 || c.state === 1) return null;
    return { errcode: 95018, errmsg: 'send msg session status invalid' };
  }

  /** An accepted send_msg: a new conversation (0) is now handled by the bot (1). */
  botSent(kfid: string, user: string): void {
    const c = this.convs.get(key(kfid, user));
    if (c?.state === 0) c.state = 1;
  }

  /**
   * `service_state/trans` after body validation. Errors, in order: 40096 pair never seen (unconfirmed); 40058
   * state 3 without servicer_userid (unconfirmed); 95014 servicer_userid not currently receiving (unconfirmed:
   * "user is not a servicer"); 95016 "invalid state transfer" for a move outside kf §4.1, including 3→3 to the same
   * servicer (unconfirmed). A msg_code comes back the first time a conversation moves to 2 or to 3, and on
   * every move to 4.
   */
  trans(kfid: string, user: string, to: ServiceState, servicer: string | undefined, now: number): ApiError | { msg_code?: string } {
    const c = this.convs.get(key(kfid, user));
    if (c === undefined) return { errcode: 40096, errmsg: 'invalid external_userid' };
    if (to === 3) {
      if (servicer === undefined || servicer === '') return { errcode: 40058, errmsg: 'invalid parameter: servicer_userid required' };
      if (!this.servicers.has(servicer)) return { errcode: 95014, errmsg: 'user is not servicer' };
    }
    if (!ALLOWED_MOVES[c.state].includes(to) || (to === 3 && c.state === 3 && c.servicer === servicer)) {
      return { errcode: 95016, errmsg: `invalid state transfer: ${c.state} to ${to}` };
    }
    c.state = to;
    c.servicer = to === 3 ? servicer : undefined;
    let kind: MsgCodeKind | undefined;
    if (to === 2 && !c.gotQueueCode) {
      c.gotQueueCode = true;
      kind = 'queue';
    } else if (to === 3 && !c.gotServicerCode) {
      c.gotServicerCode = true;
      kind = 'servicer';
    } else if (to === 4) {
      kind = 'ended';
    }
    return kind === undefined ? {} : { msg_code: this.issue(kind, kfid, user, c.epoch, now) };
  }

  /**
   * Test control: a servicer takes the conversation (state 3). Returns the `session_status_change` event body:
   * change_type 1 from the queue (with a 48 h msg_code), 4 when an ended conversation is reopened (earlier codes
   * stay invalid), else 2 (transferred, no msg_code). Throws for a pair the fake never saw.
   */
  servicerTakes(kfid: string, user: string, servicer: string, now: number): Record<string, unknown> {
    const c = this.mustGet(kfid, user);
    const old = c.state === 3 ? c.servicer : undefined;
    const changeType = c.state === 2 ? CHANGE_TYPE.fromQueue : c.state === 4 ? CHANGE_TYPE.reopened : CHANGE_TYPE.transferred;
    if (changeType === CHANGE_TYPE.reopened) {
      this.epochs += 1; // codes handed out before the end stay dead
      c.epoch = this.epochs;
    }
    c.state = 3;
    c.servicer = servicer;
    let msgCode: string | undefined;
    if (changeType === CHANGE_TYPE.fromQueue) {
      c.gotServicerCode = true;
      msgCode = this.issue('servicer', kfid, user, c.epoch, now);
    }
    return {
      event_type: 'session_status_change',
      open_kfid: kfid,
      external_userid: user,
      change_type: changeType,
      ...(old !== undefined && { old_servicer_userid: old }),
      new_servicer_userid: servicer,
      ...(msgCode !== undefined && { msg_code: msgCode }),
    };
  }

  /**
   * Test control: the conversation ends (state 4). Returns the `session_status_change` event body with change_type 3
   * and a 20 s goodbye msg_code. Throws for a pair the fake never saw or one already in state 4.
   */
  endSession(kfid: string, user: string, now: number): Record<string, unknown> {
    const c = this.mustGet(kfid, user);
    if (c.state === 4) throw new Error(`fake wecom endSession: ${kfid}/${user} is already in state 4`);
    const old = c.state === 3 ? c.servicer : undefined;
    c.state = 4;
    c.servicer = undefined;
    return {
      event_type: 'session_status_change',
      open_kfid: kfid,
      external_userid: user,
      change_type: CHANGE_TYPE.ended,
      ...(old !== undefined && { old_servicer_userid: old }),
      msg_code: this.issue('ended', kfid, user, c.epoch, now),
    };
  }

  /** True when `code` is a msg_code issued here (used or not). */
  isMsgCode(code: string): boolean {
    return this.codes.has(code);
  }

  /** The kf account and customer a msg_code belongs to, or undefined. */
  codeOwner(code: string): { open_kfid: string; external_userid: string; kind: MsgCodeKind } | undefined {
    const m = this.codes.get(code);
    return m && { open_kfid: m.open_kfid, external_userid: m.external_userid, kind: m.kind };
  }

  /**
   * Checks a msg_code for send_msg_on_event: 40008 msgtype not allowed for its kind; 95016 used or expired
   * (unconfirmed, same as for welcome codes); 95018 the conversation left the state that produced the code, or a
   * new conversation began (unconfirmed).
   */
  checkCode(code: string, msgtype: string, now: number): ApiError | null {
    const m = this.codes.get(code);
    if (m === undefined) return { errcode: 95016, errmsg: 'invalid code' };
    if (!MSG_CODE_TYPES[m.kind].has(msgtype)) return { errcode: 40008, errmsg: 'invalid message type' };
    if (m.used) return { errcode: 95016, errmsg: 'invalid code: already used' };
    if (m.expires <= now) return { errcode: 95016, errmsg: 'invalid code: expired' };
    const c = this.convs.get(key(m.open_kfid, m.external_userid));
    if (c === undefined || c.epoch !== m.epoch || c.state !== CODE_STATE[m.kind]) {
      return { errcode: 95018, errmsg: 'send msg session status invalid' };
    }
    return null;
  }

  /** Marks a msg_code used. */
  useCode(code: string): void {
    const m = this.codes.get(code);
    if (m) m.used = true;
  }

  private issue(kind: MsgCodeKind, kfid: string, user: string, epoch: number, now: number): string {
    const code = newCode();
    this.codes.set(code, { kind, open_kfid: kfid, external_userid: user, epoch, expires: now + MSG_CODE_TTL_MS[kind], used: false });
    return code;
  }

  private mustGet(kfid: string, user: string): Conversation {
    const c = this.convs.get(key(kfid, user));
    if (c === undefined) throw new Error(`fake wecom: no conversation for ${kfid}/${user} (add a customer message first)`);
    return c;
  }
}
