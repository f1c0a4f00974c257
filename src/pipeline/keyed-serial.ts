/**
 * Runs tasks one after another per key and in parallel across keys: a customer's second message is answered
 * after the first, while other customers are not held up. In-process only; chains are dropped when idle so
 * the map does not grow with the number of customers ever seen.
 */
export function createKeyedSerial(): {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  readonly activeKeys: number;
} {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(key: string, task: () => Promise<T>): Promise<T> {
      const prev = tails.get(key) ?? Promise.resolve();
      const next = prev.then(task, task);
      const tail = next.catch(() => undefined);
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return next;
    },
    get activeKeys() {
      return tails.size;
    },
  };
}
