import type { ReadOutcome, SweepMark } from './observe';
import type { BucketState } from './token-bucket';

/**
 * What one sweep decides, as the planner (plan.ts) returns it: the actions, the refused ones and
 * why, the state writes, and the report of what it saw.
 */

export type StaleReason = 'absent' | 'not-found';

export type SweepAction =
  /** Delete the node if its ModifyIndex is still `modifyIndex`, then force-leave (instanceEvents' path). */
  | {
      type: 'deregister';
      node: string;
      modifyIndex: number;
      instanceId: string;
      zone: string;
      group: string;
      reason: StaleReason;
    }
  /** `recreateInstances` on the group for one instance URL. */
  | {
      type: 'recreate';
      group: string;
      instance: string;
      instanceId: string;
      name: string;
      zone: string;
      reason: 'broken' | 'orphan';
    }
  /** Delete a drain list entry naming an instance that no longer exists (CAS). */
  | { type: 'delete-drain'; node: string; instanceId: string; modifyIndex: number }
  /** Delete instanceEvents' record of an instance that no longer exists (CAS). */
  | { type: 'delete-record'; instanceId: string; modifyIndex: number }
  /** Delete the ledger's day folders past retention (the ledger's own purge). */
  | { type: 'purge-ledger' }
  /** Delete (CAS) a watched role's node no gossip member backs; no force-leave: it is no member. */
  | { type: 'remove-unproven'; node: string; modifyIndex: number; zone: string };

export type RefusalReason =
  | 'incomplete-read'
  | 'all-zones-dead'
  | 'zone-partitioned'
  | 'group-unstable'
  | 'group-budget'
  | 'healthy-minimum'
  | 'rate-limited';

export interface Refusal {
  action: SweepAction;
  reason: RefusalReason;
}

/** A mark write, compare-and-set on the index read (0: create only if still absent). */
export type MarkWrite =
  | { op: 'put'; instanceId: string; mark: SweepMark; cas: number }
  | { op: 'delete'; instanceId: string; cas: number };

export interface ZoneSummary {
  zone: string;
  /** Running members with no current action, past their boot grace or with a node. */
  running: number;
  /** Of those, without a Consul node or with a critical one. */
  dead: number;
  partitioned: boolean;
}

export interface GroupSummary {
  key: string;
  role: string;
  isStable: boolean;
  members: number;
  /** RUNNING with no current action. */
  running: number;
  /** Running, with a passing node. */
  healthy: number;
  broken: number;
  orphans: number;
}

export interface NodeFinding {
  node: string;
  instanceId: string;
  zone: string;
  group: string;
  absentCount: number;
}

export type IdentityReason =
  | 'not-a-member'
  | 'address-mismatch'
  | 'no-identity'
  | 'foreign-check'
  | 'identity-disputed'
  /** Its checks were over the per-node cap: not read, nothing acts on the node or its instance. */
  | 'oversized';

export interface IdentityFinding {
  node: string;
  reason: IdentityReason;
  address: string;
}

export interface InstanceFinding {
  instanceId: string;
  name: string;
  zone: string;
  group: string;
  /** When the problem was first seen (ms). */
  since: number;
}

export interface SweepReport {
  at: number;
  /** What was read: members of the watched groups, catalog nodes, nodes of watched groups. */
  seen: { groups: number; members: number; nodes: number; nodesInGroups: number };
  /** Why the whole sweep only reports; empty when it may act. */
  reportOnly: Array<'incomplete-read' | 'all-zones-dead'>;
  incompleteReads: ReadOutcome[];
  /**
   * Where the nodes came from: the catalog, or (its listing over the cap) the gossip members, when
   * catalog-only nodes are not seen: none is removed, no member is judged by a node it may have
   * there, and no leftover is reaped (plan.ts).
   */
  listing: { source: 'catalog' } | { source: 'members'; detail: string };
  zones: ZoneSummary[];
  groups: GroupSummary[];
  /** Members whose node is passing, per role and zone (every role and zone with a running member). */
  healthyMembers: Array<{ role: string; zone: string; healthy: number }>;
  stale: Array<NodeFinding & { reason: StaleReason }>;
  /** Absent, but fewer than N consecutive sweeps so far. */
  absent: NodeFinding[];
  /** Absent from the watched groups, but Compute says the instance exists: never deregistered. */
  kept: NodeFinding[];
  broken: InstanceFinding[];
  orphans: InstanceFinding[];
  leftovers: Array<{ instanceId: string }>;
  /** Running members being drained (drain list entry naming their id, or node maintenance). */
  draining: Array<{ instanceId: string; name: string; group: string }>;
  /** Drain list entries naming an instance that is gone: no group lists it, no node claims it. */
  drainLeftovers: Array<{ node: string; instanceId: string }>;
  /** Nodes without (valid) identity metadata: never acted on. */
  unidentified: string[];
  /** Managed-role nodes whose identity gossip or their own agent does not back (identity.ts). */
  identity: IdentityFinding[];
  actions: SweepAction[];
  refused: Refusal[];
}

export interface SweepPlan {
  report: SweepReport;
  /** What to do, in order; empty when the sweep is report-only. */
  actions: SweepAction[];
  /** Written (CAS) before any action: a lost CAS means another sweep ran, so nothing is done. */
  bucket: { state: BucketState; cas: number } | null;
  marks: MarkWrite[];
}

/** Instances the sweep asks Compute about (`instances.get`): absent nodes, at most `limit`. */
export interface LookupCandidate {
  instanceId: string;
  project: string;
  zone: string;
  name: string;
}

/** Sorts by a string key. */
export const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
