/**
 * What the console knows of each customer beyond the log rows (nickname, bot/human state), fetched once per
 * customer from `/admin/customers/:id` (a few at a time) and kept current by the live feed's `state` events.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, subscribe, type Customer, type State } from './api.js';

export interface Known {
  nickname: string | null;
  state: State;
}

const known = new Map<string, Known>();
const pending = new Set<string>();
const queue: string[] = [];
const listeners = new Set<() => void>();
let running = 0;
const CONCURRENCY = 4;

function changed(): void {
  for (const l of listeners) l();
}

function pump(): void {
  while (running < CONCURRENCY && queue.length) {
    const id = queue.shift()!;
    running++;
    api.customer(id).then(
      (c) => remember(c),
      () => undefined, // erased meanwhile or a lost session: the row shows no badge
    ).finally(() => {
      pending.delete(id);
      running--;
      pump();
    });
  }
}

export function remember(c: Pick<Customer, 'customerId' | 'nickname' | 'state'>): void {
  known.set(c.customerId, { nickname: c.nickname, state: c.state });
  changed();
}

export function setState(customerId: string, state: State): void {
  const k = known.get(customerId);
  known.set(customerId, { nickname: k?.nickname ?? null, state });
  changed();
}

/** Fetches the customers not known yet. */
export function want(ids: Iterable<string>): void {
  for (const id of ids) {
    if (known.has(id) || pending.has(id)) continue;
    pending.add(id);
    queue.push(id);
  }
  pump();
}

/** Forgets everything (a reconnect after missed events): states are fetched again. */
export function invalidate(): void {
  known.clear();
  changed();
}

export function get(id: string): Known | undefined {
  return known.get(id);
}

/** Re-renders the caller when any customer's data changes. */
export function useCustomers(): void {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    l(); // a change between the render and this effect
    return () => void listeners.delete(l);
  }, []);
}

subscribe({ state: (ev) => setState(ev.customerId, ev.state) });
