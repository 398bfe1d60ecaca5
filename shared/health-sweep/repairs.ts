import type { MemberView } from './classify';
import { resolveBudget, type HealthSweepConfig, type WatchedGroup } from './config';
import type { GroupObservation, Observation } from './observe';
import type { Staleness } from './reaping';
import {
  byKey,
  type InstanceFinding,
  type Refusal,
  type RefusalReason,
  type SweepAction,
  type SweepReport,
} from './report';
import { take, type BucketState } from './token-bucket';

/**
 * The sweep's candidate actions and the gates each must pass: report-only, a partitioned zone, the
 * group's stability, budget and healthy minimum, and the token bucket. Pure.
 */

export interface Candidate {
  action: SweepAction;
  zone: string;
  /** For recreations: the group whose budget and minimum apply. */
  group?: WatchedGroup;
}

/** Deregistrations first (cheapest to undo: an agent re-registers), then recreations. */
export function repairCandidates(
  config: HealthSweepConfig,
  staleNodes: Staleness['staleNodes'],
  views: readonly MemberView[],
  now: number,
) {
  const candidates: Candidate[] = staleNodes.map(({ node, finding: s }) => ({
    action: {
      type: 'deregister',
      node: node.name,
      modifyIndex: node.modifyIndex,
      instanceId: s.instanceId,
      zone: s.zone,
      group: s.group,
      reason: s.reason,
    },
    zone: s.zone,
  }));
  const broken: InstanceFinding[] = [];
  const orphans: InstanceFinding[] = [];
  const sortedViews = [...views].sort(byKey((v) => `${v.group.key}\u0000${v.member.name}`));
  for (const reason of ['broken', 'orphan'] as const) {
    for (const v of sortedViews) {
      if (v.state !== reason) continue;
      const { member } = v;
      const finding = { instanceId: member.id, name: member.name, zone: member.zone, group: v.group.key };
      (reason === 'broken' ? broken : orphans).push({ ...finding, since: v.since ?? now });
      if (reason === 'orphan' && !config.repairOrphans) continue;
      candidates.push({
        action: {
          type: 'recreate',
          group: v.group.key,
          instance: member.instance,
          instanceId: member.id,
          name: member.name,
          zone: member.zone,
          reason,
        },
        zone: member.zone,
        group: v.group,
      });
    }
  }
  return { candidates, broken, orphans };
}

export interface Gated {
  actions: SweepAction[];
  refused: Refusal[];
  /** The bucket to write, when a token was taken (or an invalid value is to be replaced). */
  bucket: { state: BucketState; cas: number } | null;
}

/** Passes each candidate through the gates, in order; then the leftovers and the ledger purge. */
export function gateActions(
  config: HealthSweepConfig,
  obs: Observation,
  input: {
    candidates: readonly Candidate[];
    leftoverActions: readonly SweepAction[];
    views: readonly MemberView[];
    observed: ReadonlyMap<string, GroupObservation>;
    partitioned: ReadonlySet<string>;
    reportOnly: SweepReport['reportOnly'];
  },
): Gated {
  const now = obs.at;
  const actions: SweepAction[] = [];
  const refused: Refusal[] = [];
  const recreated = new Map<string, number>();
  const runningOf = new Map<string, number>();
  // An unreadable or unlisted member is not counted as running: for the healthy minimum it may as well be dead.
  for (const v of input.views) {
    if (!['transitioning', 'unreadable', 'unlisted'].includes(v.state))
      runningOf.set(v.group.key, (runningOf.get(v.group.key) ?? 0) + 1);
  }
  let bucketState: BucketState | null =
    obs.bucket.value ?? (obs.bucket.modifyIndex > 0 ? { tokens: 0, at: now } : null);
  let bucketTouched = obs.bucket.value === null && obs.bucket.modifyIndex > 0;
  const sweepRefusal = input.reportOnly[0];
  const groupRefusal = (group: WatchedGroup): RefusalReason | undefined => {
    const g = input.observed.get(group.key);
    const members = g?.members.length ?? 0;
    const done = recreated.get(group.key) ?? 0;
    const runningUntouched = (runningOf.get(group.key) ?? 0) - done;
    if (!g?.isStable) return 'group-unstable';
    if (done >= resolveBudget(group.maxRecreations, members, 'down-min-one')) return 'group-budget';
    if (runningUntouched - 1 < resolveBudget(group.healthyMinimum, members, 'up')) return 'healthy-minimum';
    return undefined;
  };
  for (const { action, zone, group } of input.candidates) {
    const reason =
      sweepRefusal ??
      (input.partitioned.has(zone) ? 'zone-partitioned' : group ? groupRefusal(group) : undefined);
    if (reason) {
      refused.push({ action, reason });
      continue;
    }
    const took = take(bucketState, now, config.thresholds.tokenBucket);
    bucketState = took.state;
    if (!took.taken) {
      refused.push({ action, reason: 'rate-limited' });
      continue;
    }
    bucketTouched = true;
    if (group) recreated.set(group.key, (recreated.get(group.key) ?? 0) + 1);
    actions.push(action);
  }
  for (const action of [...input.leftoverActions, { type: 'purge-ledger' } as const]) {
    if (sweepRefusal) refused.push({ action, reason: sweepRefusal });
    else actions.push(action);
  }
  const bucket =
    input.reportOnly.length === 0 && bucketTouched && bucketState
      ? { state: bucketState, cas: obs.bucket.modifyIndex }
      : null;
  return { actions, refused, bucket };
}
