/**
 * Status: `/admin/status` and `/admin/summary`, refreshed every 10 s — the last hour's totals and a per-minute
 * chart (uPlot), callback ack p99, each agent's LLM p95 and breaker, the queue and the health of Redis and MySQL.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, ApiError, errorText, type DoctorLine, type Health, type Status, type Summary } from './api.js';
import { duration, t, useLang, when, type Lang } from './i18n.js';

const REFRESH_MS = 10_000;
const COLORS = { answered: '#1a7f37', fallback: '#b26b00', failed: '#c62828' };

const ms = (v: number | null | undefined) => (v === null || v === undefined ? t('none') : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

function Tile({ label, value, tone }: { label: string; value: string | number; tone?: string }) {
  return html`<div class=${`tile ${tone ? `tile-${tone}` : ''}`}>
    <div class="tile-value">${value}</div>
    <div class="tile-label">${label}</div>
  </div>`;
}

function HealthBadge({ name, h }: { name: string; h: Health }) {
  const tone = h === 'up' ? 'ok' : h === 'down' ? 'bad' : 'muted';
  return html`<div class="health-item"><span>${name}</span> <span class=${`pill pill-${tone}`} data-health=${h}>${t(h)}</span></div>`;
}

/** The per-minute chart. uPlot draws into a canvas; the width follows the container. */
function Chart({ summary, lang }: { summary: Summary; lang: Lang }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = (): uPlot.AlignedData => {
    const pm = summary.perMinute;
    return [pm.map((p) => Date.parse(p.t) / 1000), pm.map((p) => p.answered), pm.map((p) => p.fallback), pm.map((p) => p.failed)];
  };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(260, Math.floor(el.clientWidth));
    const height = () => (el.clientWidth < 500 ? 180 : 240);
    const series = (label: string, stroke: string): uPlot.Series => ({ label, stroke, width: 2, fill: `${stroke}22`, points: { show: false } });
    const u = new uPlot(
      {
        width: width(),
        height: height(),
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] } },
        axes: [{}, { label: t('perMinute'), size: 50 }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        series: [{ label: t('colTime') }, series(t('answered'), COLORS.answered), series(t('fallback'), COLORS.fallback), series(t('failedCount'), COLORS.failed)],
      },
      data(),
      el,
    );
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: width(), height: height() }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [lang]);

  useEffect(() => plot.current?.setData(data()), [summary]);

  const total = summary.perMinute.reduce((n, p) => n + p.answered + p.fallback + p.failed, 0);
  return html`<figure class="chart">
    <div ref=${box} class="chart-box" data-testid="chart" role="img" aria-label=${`${t('perMinute')}: ${t('answered')}, ${t('fallback')}, ${t('failedCount')} (${total})`}></div>
  </figure>`;
}

/** `npm run doctor` from the page: run on demand (it calls the platforms and each agent once). */
function Doctor() {
  const [lines, setLines] = useState<DoctorLine[] | null>(null);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setRunning(true);
    setError(null);
    try {
      setLines((await api.doctor()).results);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setRunning(false);
    }
  };
  return html`<div class="card doctor">
    <h2>${t('doctorTitle')}</h2>
    <p class="muted small">${t('doctorHint')}</p>
    <button type="button" onClick=${run} disabled=${running} data-doctor-run>${running ? t('doctorRunning') : t('doctorRun')}</button>
    ${error ? html`<p class="result result-bad" role="alert">${t('errorPrefix')}${error}</p>` : null}
    ${lines
      ? html`<ul class="doctor-lines" data-doctor-results>
          ${lines.map(
            (l) => html`<li class=${l.ok ? (l.warning ? 'warn' : 'ok') : 'bad'}>
              <span aria-hidden="true">${l.ok ? (l.warning ? '!' : '✓') : '✗'}</span> <strong>${l.name}</strong>: ${l.detail}
              ${l.fix ? html`<div class="small">${t('doctorFix')}${l.fix}</div>` : null}
            </li>`,
          )}
        </ul>`
      : null}
  </div>`;
}

export function StatusPage() {
  const lang = useLang();
  const [status, setStatus] = useState<Status | null>(null);
  const [summary, setSummary] = useState<Summary | null>(null);
  const [summaryError, setSummaryError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [updated, setUpdated] = useState<string | null>(null);

  useEffect(() => {
    let stop = false;
    const load = async () => {
      const [s, m] = await Promise.allSettled([api.status(), api.summary()]);
      if (stop) return;
      if (s.status === 'fulfilled') {
        setStatus(s.value);
        setError(null);
      } else setError(errorText(s.reason));
      if (m.status === 'fulfilled') {
        setSummary(m.value);
        setSummaryError(null);
      } else setSummaryError(m.reason instanceof ApiError && m.reason.status === 404 ? t('summaryMissing') : errorText(m.reason));
      setUpdated(new Date().toISOString());
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, []);

  const lh = status?.lastHour;
  const queue = summary?.queue ?? status?.queue;
  return html`<section aria-labelledby="status-title" class="status">
    <div class="heading-row">
      <h1 id="status-title" tabindex="-1">${t('statusTitle')}</h1>
      ${status
        ? html`<span class=${`pill ${status.ready ? 'pill-ok' : 'pill-bad'}`}>${status.ready ? t('ready') : t('notReady')}</span>`
        : null}
      ${updated ? html`<span class="muted small">${t('updated')} ${when(updated)}</span>` : null}
    </div>
    ${error ? html`<p class="result result-bad" role="alert">${t('errorPrefix')}${error}</p>` : null}
    ${!status && !error ? html`<p class="muted">${t('loading')}</p>` : null}

    <h2>${t('lastHour')}</h2>
    ${lh
      ? html`<div class="tiles">
          <${Tile} label=${t('received')} value=${lh.received} />
          <${Tile} label=${t('answered')} value=${lh.answered} tone="ok" />
          <${Tile} label=${t('fallback')} value=${lh.fallback} tone=${lh.fallback ? 'warn' : ''} />
          <${Tile} label=${t('failedCount')} value=${lh.failed} tone=${lh.failed ? 'bad' : ''} />
          <${Tile} label=${t('ackP99')} value=${summary ? ms(summary.ackP99Ms) : t('none')} />
        </div>`
      : null}
    ${summary ? html`<${Chart} summary=${summary} lang=${lang} />` : null}
    ${summaryError ? html`<p class="result result-bad">${summaryError}</p>` : null}

    <div class="status-grid">
      <div class="card">
        <h2>${t('llm')}</h2>
        ${summary?.llm.length
          ? html`<table class="table">
              <thead>
                <tr><th scope="col">${t('agent')}</th><th scope="col">${t('p95')}</th><th scope="col">${t('breaker')}</th></tr>
              </thead>
              <tbody>
                ${summary.llm.map(
                  (a) => html`<tr>
                    <th scope="row">${a.agent}</th>
                    <td>${ms(a.p95Ms)}</td>
                    <td><span class=${`pill ${a.breakerOpen ? 'pill-bad' : 'pill-ok'}`}>${a.breakerOpen ? t('breakerOpen') : t('breakerClosed')}</span></td>
                  </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="muted">${status ? status.agents.join(', ') : t('none')}</p>`}
      </div>
      <div class="card">
        <h2>${t('queue')}</h2>
        ${queue
          ? html`<dl class="facts compact">
              <dt>${t('waiting')}</dt><dd>${queue.waiting}</dd>
              <dt>${t('active')}</dt><dd>${queue.active}</dd>
              <dt>${t('delayed')}</dt><dd>${queue.delayed}</dd>
              <dt>${t('lagP99')}</dt><dd>${ms(summary?.queue.lagP99Ms)}</dd>
            </dl>`
          : null}
      </div>
      <div class="card">
        <h2>${t('health')}</h2>
        ${summary ? html`<${HealthBadge} name="Redis" h=${summary.redis} /><${HealthBadge} name="MySQL" h=${summary.mysql} />` : null}
        ${status?.logHealth && !status.logHealth.ok
          ? html`<p class="bad small">${t('log')}: ${status.logHealth.lastError ?? ''} (${status.logHealth.buffered}/${status.logHealth.dropped})</p>`
          : null}
      </div>
      ${status
        ? html`<div class="card">
            <h2>${t('version')} ${status.version}</h2>
            <dl class="facts compact">
              <dt>${t('uptime')}</dt><dd>${duration(status.uptimeS * 1000)}</dd>
              <dt>${t('role')}</dt><dd>${status.role}</dd>
              <dt>${t('store')}</dt><dd>${status.store}</dd>
              <dt>${t('log')}</dt><dd>${status.log}</dd>
              <dt>${t('channels')}</dt>
              <dd>${(Object.entries(status.channels) as [string, boolean][]).filter(([, on]) => on).map(([c]) => c).join(', ') || t('none')}</dd>
              <dt>${t('agents')}</dt><dd>${status.agents.join(', ')}</dd>
            </dl>
          </div>`
        : null}
    </div>
    <${Doctor} />
  </section>`;
}
