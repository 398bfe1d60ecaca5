import { readJson, type ConsulClient, type StoredJson } from '../consul';
import { autoscalerStateSchema, type AutoscalerState } from './plan';

/** The record and its CAS index; a value that is not a valid record reads as null. */
export type StoredState = StoredJson<AutoscalerState>;

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
    get: (key) => readJson(kv, key, autoscalerStateSchema),
    async cas(key, value, index) {
      return (await kv.cas(key, JSON.stringify(value), index)) !== null;
    },
    remove(key, index) {
      return kv.delete(key, { cas: index });
    },
  };
}
