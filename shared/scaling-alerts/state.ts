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
  /** The confirmed alert policy (`projects/P/alertPolicies/<id>`) whose incident holds the lease. */
  policy: z.string().max(256).optional(),
});
export type Lease = z.infer<typeof leaseSchema>;

export const autoscalerStateSchema = z.object({
  leases: z.record(incidentIdSchema, leaseSchema).default({}),
  /** Incidents seen closed (id → close time, ms), so an `open` delivered late changes nothing. */
  closed: z.record(incidentIdSchema, z.number()).default({}),
  /**
   * Per confirmed policy, its current run of leases: when the first of them was granted and the
   * last granted or renewed. No lease of the run lasts beyond the tier's maximum lifetime from
   * `first`; a run ends once the policy held no lease for a longest lease (`lease.maxSec`).
   */
  runs: z.record(z.string().max(256), z.object({ first: z.number(), last: z.number() })).optional(),
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

export const emptyState = (): AutoscalerState => ({
  leases: {},
  closed: {},
  original: {},
  changes: [],
});

/**
 * Bounds of a record, far under Consul's 512 KiB value limit whatever a publisher sends: at most
 * `leases` active leases (a new one beyond is refused), `tombstones` closed incidents and `runs`
 * policy runs (oldest evicted), and `bytes` in all (tombstones evicted oldest first to get there).
 * With 128-character ids a full record is about 60 KiB.
 */
export const recordBounds = { leases: 32, tombstones: 256, runs: 64, bytes: 128 * 1024 } as const;

/** The `n` entries with the greatest times, in their own order (so an unchanged record reads the same). */
function newest(m: Record<string, number>, n: number): Record<string, number> {
  const entries = Object.entries(m);
  if (entries.length <= n) return m;
  const keep = new Set(
    [...entries]
      .sort(([ia, a], [ib, b]) => b - a || (ia < ib ? -1 : 1))
      .slice(0, n)
      .map(([k]) => k),
  );
  return Object.fromEntries(entries.filter(([k]) => keep.has(k)));
}

/** The record within `recordBounds`, its tombstones and runs within `retentionMs` of now. */
export function boundRecord(state: AutoscalerState, now: number, retentionMs: number): AutoscalerState {
  const fresh = Object.fromEntries(Object.entries(state.closed).filter(([, at]) => at > now - retentionMs));
  let closed = newest(fresh, recordBounds.tombstones);
  const all = Object.fromEntries(
    Object.entries(state.runs ?? {}).filter(([, r]) => r.last > now - retentionMs),
  );
  const keep = new Set(
    Object.keys(
      newest(Object.fromEntries(Object.entries(all).map(([k, r]) => [k, r.last])), recordBounds.runs),
    ),
  );
  const runs = Object.fromEntries(Object.entries(all).filter(([k]) => keep.has(k)));
  let bounded: AutoscalerState = { ...state, closed, ...(state.runs ? { runs } : {}) };
  while (Object.keys(closed).length && Buffer.byteLength(JSON.stringify(bounded)) > recordBounds.bytes) {
    closed = newest(closed, Math.floor(Object.keys(closed).length / 2));
    bounded = { ...bounded, closed };
  }
  return bounded;
}

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
