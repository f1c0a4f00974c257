/**
 * Conversations: the newest 200 log rows (server-side filters channel, account and text) grouped by customer,
 * newest first; the live feed adds rows as they happen (the customer moves to the top) and updates the badges.
 */
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, applySettled, compareRows, errorText, rowKey, subscribe, type Channel, type Row } from './api.js';
import { get, invalidate, useCustomers, want } from './customers.js';
import { duration, t, useLang } from './i18n.js';
import { href, replaceParams } from './router.js';
import { StateBadge } from './ui.js';

export const CHANNELS: Channel[] = ['kf', 'mp', 'bot', 'openai-compat'];

export interface Conversation {
  customerId: string;
  channel: Channel;
  account: string;
  externalId: string;
  last: Row;
  /** when the customer's oldest inbound message with no outbound after it arrived (ms), or null */
  waitingSince: number | null;
}

/** Groups rows (any order) into conversations, the most recent first. */
export function group(rows: Iterable<Row>): Conversation[] {
  const by = new Map<string, Row[]>();
  for (const r of rows) {
    const list = by.get(r.customerId);
    if (list) list.push(r);
    else by.set(r.customerId, [r]);
  }
  const out: Conversation[] = [];
  for (const [customerId, list] of by) {
    list.sort((a, b) => compareRows(b, a));
    const last = list[0]!;
    // Waiting: the inbound messages newer than the newest outbound one; the wait started at the oldest of them.
    let waitingSince: number | null = null;
    for (const r of list) {
      if (r.direction === 'out') break;
      waitingSince = Date.parse(r.at);
    }
    out.push({ customerId, channel: last.channel, account: last.account, externalId: last.externalId, last, waitingSince });
  }
  return out.sort((a, b) => Date.parse(b.last.at) - Date.parse(a.last.at));
}

interface Filters {
  channel: string;
  account: string;
  state: string;
  q: string;
}

const seenAccounts = new Map<string, Set<string>>();

function matches(r: Row, f: Filters): boolean {
  if (f.channel && r.channel !== f.channel) return false;
  if (f.account && r.account !== f.account) return false;
  if (f.q && !r.content.toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

function noteAccounts(rows: Row[]): void {
  for (const r of rows) {
    const s = seenAccounts.get(r.channel) ?? new Set<string>();
    s.add(r.account);
    seenAccounts.set(r.channel, s);
  }
}

export function Conversations({ params }: { params: URLSearchParams }) {
  useLang();
  useCustomers();
  const f: Filters = {
    channel: params.get('channel') ?? '',
    account: params.get('account') ?? '',
    state: params.get('state') ?? '',
    q: params.get('q') ?? '',
  };
  const [rows, setRows] = useState<Map<string, Row>>(new Map());
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [draft, setDraft] = useState(f.q);
  const filtersRef = useRef(f);
  filtersRef.current = f;
  const opened = useRef(false);
  const generation = useRef(0);
  /** rows the feed brought while a load was in flight (the load's answer may predate them) */
  const arrived = useRef(new Map<string, Row>());

  const load = () => {
    const gen = ++generation.current;
    const cur = filtersRef.current;
    arrived.current = new Map();
    setLoading(true);
    api.messages({ channel: cur.channel, account: cur.account, q: cur.q, limit: 200 }).then(
      (page) => {
        if (gen !== generation.current) return;
        noteAccounts(page.items);
        setRows(new Map([...page.items.map((r): [string, Row] => [rowKey(r), r]), ...arrived.current]));
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (gen !== generation.current) return;
        setError(errorText(e));
        setLoading(false);
      },
    );
  };

  useEffect(() => load(), [f.channel, f.account, f.q]);
  useEffect(() => setDraft(f.q), [f.q]);

  useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), 5000);
    const off = subscribe({
      message: (r) => {
        noteAccounts([r]);
        if (!matches(r, filtersRef.current)) return;
        arrived.current.set(rowKey(r), r);
        setRows((prev) => new Map(prev).set(rowKey(r), r));
        setNow(Date.now());
      },
      settled: (st) => {
        const key = rowKey({ direction: 'in', ...st, id: null });
        setRows((prev) => {
          const r = prev.get(key);
          return r ? new Map(prev).set(key, applySettled(r, st)) : prev;
        });
      },
      open: () => {
        // A reconnect may have missed rows and state changes: start over.
        if (opened.current) {
          invalidate();
          load();
        }
        opened.current = true;
      },
    });
    return () => {
      clearInterval(tick);
      off();
    };
  }, []);

  const conversations = useMemo(() => group(rows.values()), [rows]);
  useEffect(() => want(conversations.map((c) => c.customerId)), [conversations]);
  const shown = f.state ? conversations.filter((c) => get(c.customerId)?.state === f.state) : conversations;

  const setFilter = (k: keyof Filters, v: string) => {
    const next = { ...f, [k]: v };
    if (k === 'channel') next.account = '';
    replaceParams(next as unknown as Record<string, string>);
  };
  const accounts = [...(f.channel ? (seenAccounts.get(f.channel) ?? []) : [...seenAccounts.values()].flatMap((s) => [...s]))].sort();
  if (f.account && !accounts.includes(f.account)) accounts.unshift(f.account);

  return html`<section aria-labelledby="conv-title">
    <div class="heading-row">
      <h1 id="conv-title" tabindex="-1">${t('navConversations')}</h1>
      <button type="button" class="secondary" onClick=${load} disabled=${loading}>${t('refresh')}</button>
    </div>
    <div class="filters">
      <label
        >${t('filterChannel')}
        <select value=${f.channel} onChange=${(e: Event) => setFilter('channel', (e.target as HTMLSelectElement).value)} name="channel">
          <option value="">${t('filterAll')}</option>
          ${CHANNELS.map((c) => html`<option value=${c}>${c}</option>`)}
        </select>
      </label>
      <label
        >${t('filterAccount')}
        <select value=${f.account} onChange=${(e: Event) => setFilter('account', (e.target as HTMLSelectElement).value)} name="account">
          <option value="">${t('filterAll')}</option>
          ${accounts.map((a) => html`<option value=${a}>${a}</option>`)}
        </select>
      </label>
      <label
        >${t('filterState')}
        <select value=${f.state} onChange=${(e: Event) => setFilter('state', (e.target as HTMLSelectElement).value)} name="state">
          <option value="">${t('filterAll')}</option>
          <option value="bot">${t('stateBot')}</option>
          <option value="human">${t('stateHuman')}</option>
        </select>
      </label>
      <form
        class="search"
        role="search"
        onSubmit=${(e: Event) => {
          e.preventDefault();
          setFilter('q', draft.trim());
        }}
      >
        <label
          >${t('search')}
          <input type="search" name="q" value=${draft} maxlength="200" onInput=${(e: Event) => setDraft((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">${t('searchButton')}</button>
        ${f.q ? html`<button type="button" class="secondary" onClick=${() => setFilter('q', '')}>${t('clear')}</button>` : null}
      </form>
    </div>
    ${error ? html`<p class="result result-bad" role="alert">${t('errorPrefix')}${error}</p>` : null}
    ${loading && !rows.size ? html`<p class="muted">${t('loading')}</p>` : null}
    ${!loading && !shown.length && !error ? html`<p class="muted">${t('noConversations')}</p>` : null}
    <ul class="conversations" aria-busy=${loading}>
      ${shown.map((c) => {
        const k = get(c.customerId);
        const name = k?.nickname || c.externalId || c.customerId;
        const waiting = c.waitingSince === null ? null : now - c.waitingSince;
        return html`<li key=${c.customerId} data-customer=${c.customerId}>
          <a class="conv" href=${href.conversation(c.customerId)}>
            <span class="conv-who">
              <strong class="conv-name">${name}</strong>
              <span class="conv-meta"><span class="chip">${c.channel}</span> <span class="mono">${c.account}</span></span>
            </span>
            <span class="conv-last">
              <span class="dir" aria-label=${c.last.direction === 'in' ? t('inbound') : t('outbound')}>${c.last.direction === 'in' ? '←' : '→'}</span>
              ${c.last.content || html`<em class="muted">${c.last.type}</em>`}
            </span>
            <span class="conv-wait" title=${t('colWaiting')}>
              ${waiting === null ? html`<span class="muted">${t('notWaiting')}</span>` : html`<span class=${waiting > 300_000 ? 'late' : 'waiting'}>${t('colWaiting')} ${duration(waiting)}</span>`}
            </span>
            <span class="conv-state"><${StateBadge} state=${k?.state} /></span>
          </a>
        </li>`;
      })}
    </ul>
  </section>`;
}
