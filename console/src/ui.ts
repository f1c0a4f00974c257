/** Small shared pieces: badges, inline results, the confirm dialog. */
import { html } from 'htm/preact';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { State } from './api.js';
import { t } from './i18n.js';

export function StateBadge({ state }: { state: State | undefined }) {
  if (!state) return html`<span class="badge badge-unknown" aria-label=${t('filterState')}>${t('stateUnknown')}</span>`;
  return html`<span class=${`badge badge-${state}`} data-state=${state}>${state === 'human' ? t('stateHuman') : t('stateBot')}</span>`;
}

const STATUS_TONE: Record<string, string> = {
  answered: 'ok',
  sent: 'ok',
  command: 'muted',
  skipped: 'muted',
  pending: 'muted',
  fallback: 'warn',
  failed: 'bad',
};

export function StatusBadge({ status }: { status: string }) {
  return html`<span class=${`pill pill-${STATUS_TONE[status] ?? 'muted'}`}>${status}</span>`;
}

export interface Outcome {
  ok: boolean;
  text: string;
}

/** The result of an action, announced to screen readers. */
export function Result({ outcome }: { outcome: Outcome | null }) {
  return html`<p class=${`result ${outcome ? (outcome.ok ? 'result-ok' : 'result-bad') : ''}`} role="status" aria-live="polite">
    ${outcome ? (outcome.ok ? '✓ ' : '✗ ') + outcome.text : ''}
  </p>`;
}

/** A modal dialog (native <dialog>: Esc closes it, focus is trapped and returned). */
export function Dialog(p: { open: boolean; title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (p.open && !d.open) d.showModal();
    if (!p.open && d.open) d.close();
  }, [p.open]);
  return html`<dialog ref=${ref} class="dialog" aria-labelledby="dialog-title" onClose=${p.onClose}>
    <h2 id="dialog-title">${p.title}</h2>
    ${p.children}
  </dialog>`;
}
