/**
 * RFC 7396 JSON merge patch: what Compute does with a `patch` body. The autoscalers adapter uses it
 * to turn a patch the client cannot send into an update; tests and the emulator use it too.
 */
export function applyMergePatch<T>(target: T, patch: unknown): T {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    else base[k] = applyMergePatch(base[k], v);
  }
  return base as T;
}

/** True when a merge patch deletes something (a `null`). */
export function deletes(patch: unknown): boolean {
  if (patch === null) return true;
  if (typeof patch !== 'object' || Array.isArray(patch)) return false;
  return Object.values(patch as Record<string, unknown>).some(deletes);
}

/** Canonical JSON (sorted keys, undefined left out): the same value compares equal whatever the key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}
