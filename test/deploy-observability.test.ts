/**
 * The Grafana dashboard (deploy/grafana/wechat-ai-bridge.json) and the Prometheus alert rules
 * (deploy/prometheus/alerts.yml) must only name metrics the bridge registers: a renamed metric would otherwise leave
 * a blank panel or an alert that can never fire. Every alert links a runbook section of docs/metrics.md that
 * exists. No external tools (promtool and nginx run in .ci/check-deploy.sh); the YAML is read with regular
 * expressions, so no YAML dependency is needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics.js';
import { anchors } from './helpers/markdown-anchors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

const DASHBOARD_PATH = 'deploy/grafana/wechat-ai-bridge.json';
const ALERTS_PATH = 'deploy/prometheus/alerts.yml';
const dashboardText = read(DASHBOARD_PATH);
const alertsText = read(ALERTS_PATH);
const metricsPage = read('docs/metrics.md');

/** Metric names a query may use: the bridge's own and prom-client's default process/Node.js metrics. */
const METRIC_NAME = /\b(?:bridge|process|nodejs)_[a-z0-9_]*[a-z0-9]\b/g;

const metrics = createMetrics({ defaultMetrics: true, redis: true, mysql: true });
afterAll(() => metrics.registry.clear());

/** Every series name the registry can expose: histograms also as _bucket, _sum and _count, summaries as _sum and _count. */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    // prom-client types `type` as an enum; at run time it is the exposition type's name.
    const type = String(m.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}


interface Alert {
  name: string;
  block: string;
}

/** The rules of alerts.yml, one block of text per `- alert:` entry. */
function alertRules(): Alert[] {
  const starts = [...alertsText.matchAll(/^ *- alert: *(\S+) *$/gm)];
  return starts.map((m, i) => {
    const end = starts[i + 1]?.index ?? alertsText.length;
    const block = alertsText.slice(m.index, end).split(/^ *- name:/m)[0]!;
    return { name: m[1]!, block };
  });
}

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: unknown; definition?: string }> };
  uid: string;
}
const dashboard = JSON.parse(dashboardText) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

describe('deploy/: dashboard and alerts name real metrics', () => {
  it('every bridge_*, process_* and nodejs_* name in the alert rules is registered by createMetrics()', async () => {
    const known = await exposedNames();
    const used = new Set(alertsText.match(METRIC_NAME) ?? []);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !known.has(n)).sort()).toEqual([]);
  });

  it('every bridge_*, process_* and nodejs_* name in the dashboard is registered by createMetrics()', async () => {
    const known = await exposedNames();
    const used = new Set(dashboardText.match(METRIC_NAME) ?? []);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !known.has(n)).sort()).toEqual([]);
  });

  it('the dashboard shows every bridge_* metric the bridge registers (a new metric gets a panel)', async () => {
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    const missing = (await metrics.registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((name) => name.startsWith('bridge_'))
      .filter((name) => !new RegExp(`\\b${name}(_bucket|_sum|_count)?\\b`).test(exprs));
    expect(missing).toEqual([]);
  });

  it('the alert rules cover what the runbook promises', () => {
    const exprs = alertRules().map((a) => /expr: *([\s\S]*?)\n *(?:for|labels):/.exec(a.block)?.[1] ?? '').join('\n');
    for (const name of [
      'bridge_callbacks_total',
      'bridge_replies_total',
      'bridge_llm_duration_seconds_bucket',
      'bridge_llm_breaker_open',
      'bridge_job_lag_seconds_bucket',
      'bridge_jobs_waiting',
      'bridge_token_refreshes_total',
      'bridge_log_writes_total',
      'bridge_wechat_errors_total',
      'bridge_redis_up',
      'bridge_mysql_up',
      'bridge_bot_ws_connected',
      'bridge_jobs_given_up_total',
    ]) {
      expect(exprs, name).toContain(name);
    }
    for (const outcome of ['unauthorized', 'bad_request', 'too_large', 'unavailable', 'overloaded']) expect(exprs).toContain(outcome);
    for (const errcode of ['95018', '45009', '48001', '40001', '60020', '40164']) expect(exprs).toContain(errcode);
  });
});

describe('deploy/prometheus/alerts.yml: every alert is actionable', () => {
  const rules = alertRules();

  it('has rules, each name once', () => {
    expect(rules.length).toBeGreaterThan(15);
    expect(new Set(rules.map((r) => r.name)).size).toBe(rules.length);
  });

  it.each(rules.map((r) => [r.name, r] as const))('%s has an expr, a severity, a summary, a description and a runbook_url', (_name, rule) => {
    expect(rule.block).toMatch(/^ +expr: *\S/m);
    expect(rule.block).toMatch(/^ +severity: *(critical|warning)\s*$/m);
    expect(rule.block).toMatch(/^ +summary: *\S/m);
    expect(rule.block).toMatch(/^ +description: *\S/m);
    expect(rule.block).toMatch(/^ +runbook_url: *docs\/metrics\.md#\S+\s*$/m);
  });

  it('every runbook_url anchor is a heading of docs/metrics.md, the alert name as a ### section', () => {
    const headings = anchors(metricsPage);
    const broken: string[] = [];
    for (const rule of rules) {
      const anchor = /runbook_url: *docs\/metrics\.md#(\S+)/.exec(rule.block)?.[1];
      if (anchor !== rule.name.toLowerCase()) broken.push(`${rule.name}: runbook_url anchor #${anchor} is not #${rule.name.toLowerCase()}`);
      else if (!headings.has(anchor)) broken.push(`${rule.name}: no heading #${anchor} in docs/metrics.md`);
      if (!new RegExp(`^### ${rule.name}$`, 'm').test(metricsPage)) broken.push(`${rule.name}: no "### ${rule.name}" section in docs/metrics.md`);
    }
    expect(broken).toEqual([]);
  });

  it('docs/metrics.md has no runbook section for an alert that does not exist', () => {
    const names = new Set(rules.map((r) => r.name));
    const sections = [...metricsPage.matchAll(/^### (Bridge[A-Za-z]+)$/gm)].map((m) => m[1]!);
    expect(sections.filter((s) => !names.has(s))).toEqual([]);
  });
});

describe('deploy/grafana/wechat-ai-bridge.json: importable', () => {
  it('takes its datasource as the DS_PROMETHEUS input, and every panel and query uses it', () => {
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource' }));
    const wrong: string[] = [];
    for (const p of queryPanels) {
      if (p.datasource?.uid !== '${DS_PROMETHEUS}') wrong.push(`panel ${p.id} ${p.title}`);
      for (const t of p.targets ?? []) if (t.datasource?.uid !== '${DS_PROMETHEUS}') wrong.push(`panel ${p.id} ${p.title}: a target`);
    }
    expect(wrong).toEqual([]);
  });

  it('has unique panel ids, a query in every panel, and a layout 24 columns wide', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.expr, p.title).toMatch(/\S/);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    expect(dashboard.uid).toBe('wechat-ai-bridge');
  });

  it('shows what operators asked for: callbacks, ack p99, replies, fallback share, LLM p95, breaker, queue, tokens, errcodes, log writes, Redis/MySQL, smart bot, RSS and event-loop lag', () => {
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    expect(exprs).toMatch(/histogram_quantile\(0\.99, [^\n]*bridge_ack_duration_seconds_bucket/);
    expect(exprs).toMatch(/histogram_quantile\(0\.95, [^\n]*bridge_llm_duration_seconds_bucket/);
    expect(exprs).toMatch(/bridge_replies_total\{kind="fallback"[^\n]*\/[^\n]*bridge_replies_total/);
    for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) expect(exprs).toContain(name);
  });
});
