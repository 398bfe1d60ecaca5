/** Reuses a successful answer for `ttlMs`; a failure is forgotten so the next call retries. */
export function cachedAsync<T>(load: () => Promise<T>, ttlMs: number, now: () => number = Date.now) {
  let entry: { at: number; value: Promise<T> } | undefined;
  return (): Promise<T> => {
    if (entry && now() - entry.at < ttlMs) return entry.value;
    const value = load();
    const current = { at: now(), value };
    entry = current;
    value.catch(() => {
      if (entry === current) entry = undefined;
    });
    return value;
  };
}
