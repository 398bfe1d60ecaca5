import type { ConsulClient, TxnOp } from '../consul';
import { kvPrefixes } from '../contract';
import type { MarkWrite, SweepPlan } from './plan';

/**
 * healthSweep's KV state under the orchestrator's prefix (infra-scripts/acl/health-sweep.hcl):
 * one mark per anomalous instance id, the token bucket and the lock; and instanceEvents' records,
 * drain list and ledger, which it reaps.
 */
export const healthSweepKeys = (kvPrefix: string) => {
  const shared = kvPrefixes(kvPrefix);
  const root = shared.healthSweep;
  return {
    root,
    marks: `${root}marks/`,
    bucket: `${root}bucket`,
    lock: `${root}lock`,
    records: shared.instanceRecords,
    draining: shared.draining,
    ledger: shared.instanceEventsLedger,
  };
};
export type HealthSweepKeys = ReturnType<typeof healthSweepKeys>;

/** Consul answers a transaction of more operations with 413 (64 in the versions we run). */
const MAX_TXN_OPS = 64;

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** The plan's state writes as transaction operations, each a compare-and-set on what was read. */
export function stateOps(plan: SweepPlan, keys: HealthSweepKeys): TxnOp[] {
  const ops: TxnOp[] = [];
  if (plan.bucket) {
    ops.push({
      KV: {
        Verb: 'cas',
        Key: keys.bucket,
        Value: b64(JSON.stringify(plan.bucket.state)),
        Index: plan.bucket.cas,
      },
    });
  }
  for (const w of plan.marks) ops.push(markOp(w, keys));
  return ops;
}

const markOp = (w: MarkWrite, keys: HealthSweepKeys): TxnOp =>
  w.op === 'put'
    ? {
        KV: {
          Verb: 'cas',
          Key: `${keys.marks}${w.instanceId}`,
          Value: b64(JSON.stringify(w.mark)),
          Index: w.cas,
        },
      }
    : { KV: { Verb: 'delete-cas', Key: `${keys.marks}${w.instanceId}`, Index: w.cas } };

/**
 * Writes the ops in transactions of at most 64, the bucket first. Returns false as soon as one
 * rolls back (a CAS lost to another writer): the caller then acts on nothing. Earlier chunks stay
 * written; they only record what this sweep saw, which the next sweep reads and corrects by CAS.
 */
export async function writeState(
  consul: Pick<ConsulClient, 'txn'>,
  ops: readonly TxnOp[],
  onCall: () => void,
): Promise<boolean> {
  for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
    onCall();
    const answer = await consul.txn(ops.slice(i, i + MAX_TXN_OPS));
    if (!answer.ok) return false;
  }
  return true;
}
