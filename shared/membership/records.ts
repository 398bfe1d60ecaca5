import { z } from 'zod';
import type { ConsulClient } from '../consul/client';
import { readJson } from '../consul/kv-json';
import { PermanentError, TransientError } from '../errors';
import { computeNamePattern, instanceIdPattern } from './names';

/** The drain instanceEvents set for one instance id: its key in the drain list names `node`. */
export interface Maintenance {
  node: string;
  /** Time of the event that set it. */
  eventAt: number;
}

/**
 * What instanceEvents has applied for one instance id: the latest drain and restore times and
 * its drain. Removals need no record: a deleted node is its own tombstone, and an agent that
 * comes back is followed by a restore (property-tested in instance-events.plan.test.ts).
 */
export interface InstanceRecord {
  drainAt?: number;
  restoreAt?: number;
  maintenance?: Maintenance;
}

/** An event time to record on an instance's record. */
export type RecordMark = { field: 'drainAt' | 'restoreAt'; at: number } | undefined;

/** Merges an update into a record: times only move forward, so merges commute. */
export function mergeRecord(
  record: InstanceRecord | null,
  mark: RecordMark,
  maintenance: Maintenance | null | undefined,
): InstanceRecord {
  const next: InstanceRecord = { ...(record ?? {}) };
  if (mark) next[mark.field] = Math.max(next[mark.field] ?? -Infinity, mark.at);
  if (maintenance === null) delete next.maintenance;
  else if (maintenance) next.maintenance = maintenance;
  return next;
}

const maintenanceSchema = z.object({
  node: z.string().regex(computeNamePattern),
  eventAt: z.number(),
});
const recordSchema: z.ZodType<InstanceRecord> = z.object({
  drainAt: z.number().optional(),
  restoreAt: z.number().optional(),
  maintenance: maintenanceSchema.optional(),
});

export interface StoredRecord {
  record: InstanceRecord | null;
  /** ModifyIndex of the record's key, 0 when absent (a CAS then creates it). */
  index: number;
}

export const noRecord: StoredRecord = { record: null, index: 0 };

export interface RecordStore {
  read(instanceId: string): Promise<StoredRecord>;
  /** Merges an update into the record by CAS, starting from `seen`; reads again only when a concurrent update won. */
  update(
    instanceId: string,
    seen: StoredRecord,
    mark: RecordMark,
    maintenance: Maintenance | null | undefined,
  ): Promise<void>;
  /**
   * Deletes the record if it is still the one read (its index); false when it changed since. A
   * lost CAS leaves a small, harmless stale record.
   */
  forget(instanceId: string, seen: Pick<StoredRecord, 'index'>): Promise<boolean>;
}

/** The per-instance records, one JSON value per instance id under `prefix`. */
export function createRecordStore(
  kv: Pick<ConsulClient['kv'], 'get' | 'cas' | 'delete'>,
  prefix: string,
): RecordStore {
  const keyOf = (instanceId: string) => {
    if (!instanceIdPattern.test(instanceId))
      throw new PermanentError(`refusing a record key for instance id ${JSON.stringify(instanceId)}`);
    return `${prefix}${instanceId}`;
  };
  const read = async (instanceId: string): Promise<StoredRecord> => {
    const stored = await readJson(kv, keyOf(instanceId), recordSchema);
    return { record: stored?.value ?? null, index: stored?.index ?? 0 };
  };
  return {
    read,
    async update(instanceId, seen, mark, maintenance) {
      let { record, index } = seen;
      for (let attempt = 0; attempt < 5; attempt++) {
        const next = mergeRecord(record, mark, maintenance);
        if ((await kv.cas(keyOf(instanceId), JSON.stringify(next), index)) !== null) return;
        ({ record, index } = await read(instanceId));
      }
      throw new TransientError(`instance record ${instanceId}: too many concurrent updates`);
    },
    forget(instanceId, seen) {
      return kv.delete(keyOf(instanceId), { cas: seen.index });
    },
  };
}
