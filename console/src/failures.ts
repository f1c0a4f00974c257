/** Replies that exhausted their attempts, with the last errcode and reason, and a button to send each again. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type Failure } from './api.js';
import { t, useLang, when } from './i18n.js';
import { href } from './router.js';
import { Result, type Outcome } from './ui.js';

export function Failures() {
  useLang();
  const [items, setItems] = useState<Failure[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});

  const load = (more = false) => {
    setLoading(true);
    api.failures(more ? cursor : null).then(
      (p) => {
        setItems((prev) => (more ? [...prev, ...p.items] : p.items));
        setCursor(p.nextCursor);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        setError(errorText(e));
        setLoading(false);
      },
    );
  };
  useEffect(() => load(), []);

  const replay = async (f: Failure) => {
    setBusy(f.id);
    try {
      const r = await api.replay(f.id);
      if (r.replayed) {
        setOutcomes((o) => ({ ...o, [f.id]: { ok: true, text: t('replayDone') } }));
        setItems((prev) => prev.map((x) => (x.id === f.id ? { ...x, replays: (x.replays ?? 0) + 1, errcode: null, reason: '' } : x)));
      } else {
        const why = [r.errcode != null ? `${t('errcode')} ${r.errcode}` : '', r.reason ?? ''].filter(Boolean).join(' · ');
        setOutcomes((o) => ({ ...o, [f.id]: { ok: false, text: `${t('replayFailed')}${why ? `: ${why}` : ''}` } }));
        setItems((prev) => prev.map((x) => (x.id === f.id ? { ...x, replays: (x.replays ?? 0) + 1, errcode: r.errcode ?? x.errcode, reason: r.reason ?? x.reason } : x)));
      }
    } catch (e) {
      setOutcomes((o) => ({ ...o, [f.id]: { ok: false, text: `${t('failed')}: ${errorText(e)}` } }));
    } finally {
      setBusy(null);
    }
  };

  return html`<section aria-labelledby="fail-title">
    <div class="heading-row">
      <h1 id="fail-title" tabindex="-1">${t('failuresTitle')}</h1>
      <button type="button" class="secondary" onClick=${() => load()} disabled=${loading}>${t('refresh')}</button>
    </div>
    ${error ? html`<p class="result result-bad" role="alert">${t('errorPrefix')}${error}</p>` : null}
    ${loading && !items.length ? html`<p class="muted">${t('loading')}</p>` : null}
    ${!loading && !items.length && !error ? html`<p class="muted">${t('noFailures')}</p>` : null}
    <ul class="failures">
      ${items.map(
        (f) => html`<li key=${f.id} class="failure" data-failure=${f.id}>
          <div class="failure-head">
            <time datetime=${f.at}>${when(f.at)}</time>
            <span class="chip">${f.channel}</span>
            <a href=${href.conversation(f.customerId)} class="mono">${f.externalId || f.customerId}</a>
            ${f.errcode != null ? html`<span class="pill pill-bad">${t('errcode')} ${f.errcode}</span>` : null}
            ${f.replays ? html`<span class="muted">${t('colReplays')}: ${f.replays}</span>` : null}
          </div>
          <p class="failure-reason">${f.reason}</p>
          <details>
            <summary>${t('colParts')} (${t('partsSent')} ${f.sent}/${f.parts.length})</summary>
            <ol class="parts">
              ${f.parts.map((part, i) => html`<li class=${i < f.sent ? 'muted' : ''}>${part}</li>`)}
            </ol>
          </details>
          <div class="failure-actions">
            <button type="button" onClick=${() => void replay(f)} disabled=${busy !== null} data-action="replay">
              ${busy === f.id ? t('working') : t('replay')}
            </button>
            <${Result} outcome=${outcomes[f.id] ?? null} />
          </div>
        </li>`,
      )}
    </ul>
    ${cursor ? html`<button type="button" class="secondary" onClick=${() => load(true)} disabled=${loading}>${t('loadMore')}</button>` : null}
  </section>`;
}
