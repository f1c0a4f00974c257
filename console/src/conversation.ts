/**
 * One conversation: the customer's identities and state, their messages (oldest at the top, live), and the
 * operator's actions: reset, reply, hand to a human (kf), give back to the bot.
 */
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, applySettled, compareRows, errorText, rowKey, subscribe, type Channel, type Customer, type Row, type State } from './api.js';
import { remember, setState as storeState } from './customers.js';
import { t, useLang, when } from './i18n.js';
import { href } from './router.js';
import { Dialog, Result, StateBadge, StatusBadge, type Outcome } from './ui.js';


function Meta({ r, replies }: { r: Row; replies: Row[] }) {
  const bits = [];
  if (r.agent) bits.push(html`<span>${t('agent')}: <b>${r.agent}</b></span>`);
  if (r.latencyMs !== null && r.latencyMs !== undefined) bits.push(html`<span>${t('latency')}: ${r.latencyMs} ms</span>`);
  if (r.inputTokens != null || r.outputTokens != null)
    bits.push(html`<span>${t('tokens')}: ${r.inputTokens ?? '?'} → ${r.outputTokens ?? '?'}</span>`);
  if (r.errcode != null) bits.push(html`<span class="bad">${t('errcode')} ${r.errcode}</span>`);
  // An inbound message's delivery: its status, then what became of the reply parts.
  const failedParts = replies.filter((p) => p.status === 'failed');
  const delivery =
    r.direction === 'in' && replies.length
      ? html`<span class="arrow">→</span>
          ${failedParts.length
            ? html`<${StatusBadge} status="failed" />${failedParts[0]!.errcode != null ? html` <span class="bad">${t('errcode')} ${failedParts[0]!.errcode}</span>` : null}`
            : html`<${StatusBadge} status="sent" />`}`
      : null;
  return html`<div class="msg-meta">
    <time datetime=${r.at}>${when(r.at)}</time>
    <span class="chip">${r.type}</span>
    <span class="delivery"><${StatusBadge} status=${r.status} />${delivery}</span>
    ${bits}
  </div>`;
}

export function ConversationView({ id }: { id: string }) {
  useLang();
  const [customer, setCustomer] = useState<Customer | null>(null);
  const [rows, setRows] = useState<Map<string, Row>>(new Map());
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [olderLoading, setOlderLoading] = useState(false);
  const refetch = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const threadEnd = useRef<HTMLDivElement>(null);

  const merge = (items: Row[]) => setRows((prev) => {
    const next = new Map(prev);
    for (const r of items) next.set(rowKey(r), r);
    return next;
  });

  const loadCustomer = () =>
    api.customer(id).then((c) => {
      setCustomer(c);
      remember(c);
      return c;
    });

  const loadLatest = (first = false) =>
    api.messages({ customer: id, limit: 100 }).then((p) => {
      merge(p.items);
      if (first) setCursor(p.nextCursor);
    });

  useEffect(() => {
    setLoading(true);
    setRows(new Map());
    setCustomer(null);
    Promise.all([loadCustomer(), loadLatest(true)]).then(
      () => {
        setError(null);
        setLoading(false);
        requestAnimationFrame(() => threadEnd.current?.scrollIntoView({ block: 'nearest' }));
      },
      (e: unknown) => {
        setError(errorText(e));
        setLoading(false);
      },
    );
    const off = subscribe({
      message: (r) => {
        if (r.customerId !== id) return;
        merge([r]);
        // Inbound rows settle (pending → answered) after their replies go out: read them again shortly.
        clearTimeout(refetch.current);
        refetch.current = setTimeout(() => void loadLatest().catch(() => undefined), 800);
      },
      settled: (st) => {
        const key = rowKey({ direction: 'in', ...st, id: null });
        setRows((prev) => {
          const r = prev.get(key);
          return r ? new Map(prev).set(key, applySettled(r, st)) : prev;
        });
      },
      state: (ev) => {
        if (ev.customerId === id) setCustomer((c) => (c ? { ...c, state: ev.state } : c));
      },
      open: () => void Promise.all([loadCustomer(), loadLatest()]).catch(() => undefined),
    });
    return () => {
      off();
      clearTimeout(refetch.current);
    };
  }, [id]);

  const older = () => {
    if (!cursor) return;
    setOlderLoading(true);
    api.messages({ customer: id, limit: 100, cursor }).then(
      (p) => {
        merge(p.items);
        setCursor(p.nextCursor);
        setOlderLoading(false);
      },
      (e: unknown) => {
        setError(errorText(e));
        setOlderLoading(false);
      },
    );
  };

  const thread = useMemo(() => [...rows.values()].sort(compareRows), [rows]);
  const repliesTo = useMemo(() => {
    const m = new Map<string, Row[]>();
    for (const r of thread) if (r.direction === 'out' && r.replyTo) m.set(r.replyTo, [...(m.get(r.replyTo) ?? []), r]);
    return m;
  }, [thread]);

  const channel: Channel | undefined = thread[0]?.channel ?? customer?.identities[0]?.channel;
  const name = customer?.nickname || customer?.identities[0]?.externalId || id;

  const setLocalState = (s: State) => {
    setCustomer((c) => (c ? { ...c, state: s } : c));
    storeState(id, s);
  };

  return html`<section aria-labelledby="one-title" class="conversation">
    <p><a href=${href.conversations()} class="back">${t('back')}</a></p>
    <div class="heading-row">
      <h1 id="one-title" tabindex="-1">${name}</h1>
      <span class="one-state" data-testid="state"><${StateBadge} state=${customer?.state} /></span>
    </div>
    ${error ? html`<p class="result result-bad" role="alert">${t('errorPrefix')}${error}</p>` : null}
    ${customer
      ? html`<dl class="facts">
          <dt>${t('identities')}</dt>
          <dd>
            ${customer.identities.map(
              (i) => html`<div><span class="chip">${i.channel}</span> <span class="mono">${i.account}</span> / <span class="mono">${i.externalId}</span></div>`,
            )}
          </dd>
          <dt>${t('firstSeen')}</dt>
          <dd><time datetime=${customer.firstSeen}>${when(customer.firstSeen)}</time></dd>
          <dt>${t('lastSeen')}</dt>
          <dd><time datetime=${customer.lastSeen}>${when(customer.lastSeen)}</time></dd>
          <dt>ID</dt>
          <dd class="mono">${customer.customerId}</dd>
        </dl>`
      : null}
    <div class="two-col">
      <div class="thread-wrap">
        <h2>${t('messages')}</h2>
        ${cursor ? html`<button type="button" class="secondary" onClick=${older} disabled=${olderLoading}>${t('loadOlder')}</button>` : null}
        ${loading ? html`<p class="muted">${t('loading')}</p>` : null}
        ${!loading && !thread.length ? html`<p class="muted">${t('noMessages')}</p>` : null}
        <ol class="thread" aria-live="polite" aria-relevant="additions">
          ${thread.map(
            (r) => html`<li key=${rowKey(r)} class=${`msg msg-${r.direction}`} data-direction=${r.direction}>
              <div class="bubble">
                <span class="sr-only">${r.direction === 'in' ? t('inbound') : t('outbound')}:</span>
                ${r.content || html`<em class="muted">(${r.type}${r.length ? `, ${r.length}` : ''})</em>`}
              </div>
              <${Meta} r=${r} replies=${r.direction === 'in' ? (repliesTo.get(r.msgid) ?? []) : []} />
            </li>`,
          )}
        </ol>
        <div ref=${threadEnd}></div>
      </div>
      <${Actions} id=${id} channel=${channel} state=${customer?.state} onState=${setLocalState} onChanged=${() => void loadLatest().catch(() => undefined)} />
    </div>
  </section>`;
}

function Actions(p: { id: string; channel: Channel | undefined; state: State | undefined; onState: (s: State) => void; onChanged: () => void }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [text, setText] = useState('');
  const [confirmReset, setConfirmReset] = useState(false);

  const run = async (name: string, f: () => Promise<string>) => {
    setBusy(name);
    setOutcome(null);
    try {
      setOutcome({ ok: true, text: await f() });
    } catch (e) {
      setOutcome({ ok: false, text: `${t('failed')}: ${errorText(e)}` });
    } finally {
      setBusy(null);
    }
  };

  const reset = () =>
    run('reset', async () => {
      await api.reset(p.id);
      return t('resetDone');
    });
  const reply = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    void run('reply', async () => {
      await api.reply(p.id, body);
      setText('');
      p.onState('human');
      p.onChanged();
      return t('replyDone');
    });
  };
  const handoff = () =>
    run('handoff', async () => {
      const r = await api.handoff(p.id);
      p.onState(r.state ?? 'human');
      return t('handoffDone');
    });
  const resume = () =>
    run('resume', async () => {
      const r = await api.resume(p.id);
      p.onState(r.state ?? 'bot');
      return t('resumeDone');
    });

  const canHandoff = p.channel === 'kf';
  const canReply = p.channel === 'kf' || p.channel === 'mp' || p.channel === undefined;
  const disabled = busy !== null;

  return html`<aside class="actions" aria-labelledby="actions-title">
    <h2 id="actions-title">${t('actions')}</h2>
    <${Result} outcome=${outcome} />
    <div class="action-buttons">
      <button type="button" onClick=${() => setConfirmReset(true)} disabled=${disabled} data-action="reset">
        ${busy === 'reset' ? t('working') : t('reset')}
      </button>
      <span class="tip-wrap" title=${canHandoff ? '' : t('handoffKfOnly')}>
        <button
          type="button"
          onClick=${() => void handoff()}
          disabled=${disabled || !canHandoff}
          aria-describedby=${canHandoff ? undefined : 'handoff-why'}
          data-action="handoff"
        >
          ${busy === 'handoff' ? t('working') : t('handoff')}
        </button>
      </span>
      <button type="button" onClick=${() => void resume()} disabled=${disabled} data-action="resume">
        ${busy === 'resume' ? t('working') : t('resume')}
      </button>
    </div>
    ${canHandoff ? null : html`<p id="handoff-why" class="hint">${t('handoffKfOnly')}</p>`}
    <form class="reply" onSubmit=${reply}>
      <label for="reply-text">${t('reply')}</label>
      <textarea
        id="reply-text"
        name="text"
        rows="4"
        maxlength="2000"
        placeholder=${t('replyPlaceholder')}
        value=${text}
        disabled=${!canReply}
        aria-describedby=${canReply ? undefined : 'reply-why'}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown=${(e: KeyboardEvent) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) reply(e);
        }}
      ></textarea>
      ${canReply ? null : html`<p id="reply-why" class="hint">${t('replyNoChannel')}</p>`}
      <button type="submit" disabled=${disabled || !canReply || !text.trim()} data-action="reply" title=${canReply ? 'Ctrl+Enter' : t('replyNoChannel')}>
        ${busy === 'reply' ? t('working') : t('send')}
      </button>
    </form>
    <${Dialog} open=${confirmReset} title=${t('resetConfirmTitle')} onClose=${() => setConfirmReset(false)}>
      <p>${t('resetConfirmText')}</p>
      <form method="dialog" class="dialog-buttons">
        <button type="submit" class="secondary" value="cancel" autofocus>${t('cancel')}</button>
        <button
          type="button"
          class="danger"
          data-action="reset-confirm"
          onClick=${() => {
            setConfirmReset(false);
            void reset();
          }}
        >
          ${t('confirm')}
        </button>
      </form>
    <//>
  </aside>`;
}
