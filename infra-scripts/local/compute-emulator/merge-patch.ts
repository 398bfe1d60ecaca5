/**
 * JSON merge patch (RFC 7396), the semantics Compute's PATCH methods document: objects merge key by
 * key, `null` deletes a key, anything else (arrays included) replaces. Pure; the target is not changed.
 */
const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    // defineProperty keeps a `__proto__` key a plain (and then refused) field, not a prototype.
    else
      Object.defineProperty(out, key, {
        value: mergePatch(out[key], value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}
