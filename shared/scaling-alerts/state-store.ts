import type { ConsulClient } from '../consul';
import { autoscalerStateSchema, type AutoscalerState } from './plan';

export interface StoredState {
  /** null when the key holds something that is not a valid record: overwritten by the next CAS. */
  value: AutoscalerState | null;
  /** The CAS index of the next write. */
  index: number;
}

/** Where scalingAlerts keeps its record of each autoscaler: read, compare-and-set, delete. */
export interface StateStore {
  get(key: string): Promise<StoredState | null>;
  /** Writes only if the key is still at `index` (0: only if absent); false when the CAS lost. */
  cas(key: string, value: AutoscalerState, index: number): Promise<boolean>;
  /** Deletes only if the key is still at `index`; false when the CAS lost. */
  remove(key: string, index: number): Promise<boolean>;
}

/** The store on Consul KV: only get, cas and delete. */
export function consulStateStore(kv: Pick<ConsulClient['kv'], 'get' | 'cas' | 'delete'>): StateStore {
  return {
    async get(key) {
      const entry = await kv.get(key);
      if (!entry) return null;
      let data: unknown;
      try {
        data = JSON.parse(entry.value);
      } catch {
        return { value: null, index: entry.modifyIndex };
      }
      const parsed = autoscalerStateSchema.safeParse(data);
      return { value: parsed.success ? parsed.data : null, index: entry.modifyIndex };
    },
    async cas(key, value, index) {
      return (await kv.cas(key, JSON.stringify(value), index)) !== null;
    },
    remove(key, index) {
      return kv.delete(key, { cas: index });
    },
  };
}
