import { z } from 'zod';
import { readJson, type ConsulClient, type StoredJson } from '../consul';
import { kvPrefixes } from '../contract';
import { scaleInControlSchema } from '../gcp/autoscaler-schema';
import { incidentIdSchema } from './notification';
import { autoscalerKey, changeSchema, metricTypeSchema, type AutoscalerRef } from './rules';

/** scalingAlerts' record of one autoscaler in KV, written by compare-and-set. */

export const leaseSchema = z.object({
  incidentId: incidentIdSchema,
  rule: z.string(),
  tier: z.string(),
  change: changeSchema,
  /** When the lease was granted or last renewed (ms). */
  grantedAt: z.number(),
  expiresAt: z.number(),
  /** 0 when first granted, +1 per renewal or re-grant: part of the request id. */
  generation: z.number().int().min(0),
});
export type Lease = z.infer<typeof leaseSchema>;

export const autoscalerStateSchema = z.object({
  leases: z.record(incidentIdSchema, leaseSchema).default({}),
  /** Incidents seen closed (id → close time, ms), so an `open` delivered late changes nothing. */
  closed: z.record(incidentIdSchema, z.number()).default({}),
  /** Values before this function first overrode them; `null`: the field was absent. */
  original: z
    .object({
      cpuTarget: z.number().optional(),
      lbTarget: z.number().optional(),
      customTargets: z.record(metricTypeSchema, z.number()).optional(),
      scaleInControl: scaleInControlSchema.nullable().optional(),
      mode: z.string().nullable().optional(),
      /** Set while floors are held by minNumReplicas, because a lease's schedule did not become ACTIVE. */
      minNumReplicas: z.number().int().min(0).optional(),
    })
    .default({}),
  /** Times (ms) of the changes applied in the last hour: cooldown and hourly limit. */
  changes: z.array(z.number()).default([]),
  /**
   * The last request that counted as a change, and the time it counts at: its redelivery (after a
   * transient failure) sends it again instead of being held back by its own cooldown.
   */
  lastRequest: z.object({ requestId: z.string().max(64), at: z.number() }).optional(),
});
export type AutoscalerState = z.infer<typeof autoscalerStateSchema>;

export const emptyState = (): AutoscalerState => ({ leases: {}, closed: {}, original: {}, changes: [] });

/** KV key of an autoscaler's record, under the orchestrator's prefix (ending in `/`). */
export const stateKey = (kvPrefix: string, ref: AutoscalerRef): string =>
  `${kvPrefixes(kvPrefix).scalingAlertsAutoscalers}${autoscalerKey(ref)}`;

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
