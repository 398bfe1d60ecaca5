import type { z } from 'zod';
import type { ConsulClient } from './client';

export interface StoredJson<T> {
  /** null when the key holds something that is not a valid T: callers overwrite it by CAS. */
  value: T | null;
  /** ModifyIndex of the key, the CAS index for the next write. */
  index: number;
}

/** Reads a JSON value from KV and validates it; null when the key is absent. */
export async function readJson<T>(
  kv: Pick<ConsulClient['kv'], 'get'>,
  key: string,
  schema: z.ZodType<T>,
): Promise<StoredJson<T> | null> {
  const entry = await kv.get(key);
  if (!entry) return null;
  let data: unknown;
  try {
    data = JSON.parse(entry.value);
  } catch {
    return { value: null, index: entry.modifyIndex };
  }
  const parsed = schema.safeParse(data);
  return { value: parsed.success ? parsed.data : null, index: entry.modifyIndex };
}
