import { indexNodes, liveIds, memberViews, zoneSummaries, type MemberView } from './classify';
import type { HealthSweepConfig } from './config';
import { planMarks } from './marks';
import type { GroupObservation, Observation, ReadOutcome } from './observe';
import { absenceCounter, findLeftovers, findStale } from './reaping';
import { verifyIdentity } from './identity';
import { gateActions, repairCandidates } from './repairs';
import { byKey, type GroupSummary, type SweepPlan, type SweepReport } from './report';

export { lookupCandidates } from './classify';
export type * from './report';

/**
 * The sweep's planner: from one observation, what is wrong, what to do about it, and what is
 * refused and why. Pure and deterministic (same observation, same plan), so dry-run prints exactly
 * what a real run would do.
 *
 * Safety, in the order it applies (learned from the Kubernetes node lifecycle controller and
 * cluster-autoscaler: the observer is more likely cut off than the world is on fire):
 * 1. any read failed or partial, or every zone looks dead → the whole sweep is report-only, and no
 *    mark is written (a half-read world must not count towards N);
 * 2. a zone where more than `zoneDeadThreshold` of the running members look dead → its actions are
 *    refused;
 * 3. recreations: only in stable groups, at most the group's budget, never leaving fewer running
 *    untouched members than its healthy minimum;
 * 4. every deregistration and recreation takes a token from one bucket.
 * A node is deregistered only when its instance id is in no watched group: never one whose id is
 * still a member, so a same-name replacement (which carries its own, live id) is never touched.
 */

/** Reads that were not complete; a watched group without an observation was not read either. */
function incompleteReadsOf(
  config: HealthSweepConfig,
  obs: Observation,
  observed: ReadonlyMap<string, GroupObservation>,
): ReadOutcome[] {
  const incomplete = obs.reads.filter((r) => r.status !== 'complete');
  for (const g of config.groups) {
    if (!observed.has(g.key) && !incomplete.some((r) => r.what === g.key)) {
      incomplete.push({ source: 'compute', what: g.key, status: 'failed', detail: 'not observed' });
    }
  }
  return incomplete;
}

/** Per group: members, running, healthy, broken, orphans; and healthy members per role and zone. */
function summaries(
  config: HealthSweepConfig,
  observed: ReadonlyMap<string, GroupObservation>,
  views: readonly MemberView[],
) {
  const groups = new Map<string, GroupSummary>(
    config.groups.map((g) => [
      g.key,
      {
        key: g.key,
        role: g.role,
        isStable: observed.get(g.key)?.isStable ?? false,
        members: observed.get(g.key)?.members.length ?? 0,
        running: 0,
        healthy: 0,
        broken: 0,
        orphans: 0,
      },
    ]),
  );
  const healthy = new Map<string, { role: string; zone: string; healthy: number }>();
  for (const v of views) {
    if (v.state === 'transitioning') continue;
    const g = groups.get(v.group.key) as GroupSummary;
    g.running++;
    if (v.state === 'healthy') g.healthy++;
    if (v.state === 'broken') g.broken++;
    if (v.state === 'orphan') g.orphans++;
    const key = `${v.group.role}\u0000${v.member.zone}`;
    const h = healthy.get(key) ?? { role: v.group.role, zone: v.member.zone, healthy: 0 };
    if (v.state === 'healthy') h.healthy++;
    healthy.set(key, h);
  }
  return {
    groups: [...groups.values()],
    healthyMembers: [...healthy.values()].sort(byKey((h) => `${h.role}\u0000${h.zone}`)),
  };
}

/** Plans one sweep. `config` and `obs` are read only. */
export function planSweep(config: HealthSweepConfig, obs: Observation): SweepPlan {
  const now = obs.at;
  const observed = new Map(obs.groups.map((g) => [g.key, g]));
  const live = liveIds(obs);
  const incompleteReads = incompleteReadsOf(config, obs, observed);
  const complete = incompleteReads.length === 0;

  const nodes = indexNodes(config, obs);
  const views = memberViews(config, obs, observed, nodes.byId);
  const zones = zoneSummaries(views, config.thresholds);
  const partitioned = new Set(zones.filter((z) => z.partitioned).map((z) => z.zone));
  const reportOnly: SweepReport['reportOnly'] = [];
  if (!complete) reportOnly.push('incomplete-read');
  if (zones.length > 0 && zones.every((z) => z.partitioned)) reportOnly.push('all-zones-dead');

  const absence = absenceCounter(obs);
  const identity = verifyIdentity(config, obs);
  const staleness = findStale(config, obs, {
    live,
    inGroups: nodes.inGroups,
    incompleteReads,
    countOf: absence.countOf,
    alive: identity.alive,
  });
  // Leftovers are ids no node claims: unprovable while catalog-only nodes are not listed.
  const leftovers = obs.listing
    ? { drainLeftovers: [], leftovers: [], actions: [] }
    : findLeftovers(config, obs, { live, nodesById: nodes.byId, countOf: absence.countOf });
  const repairs = repairCandidates(config, staleness.staleNodes, views, now);
  const gated = gateActions(config, obs, {
    // Catalog-only nodes first: removing one only undoes a write no agent made.
    candidates: [...identity.actions.map((action) => ({ action, zone: action.zone })), ...repairs.candidates],
    leftoverActions: leftovers.actions,
    views,
    observed,
    partitioned,
    reportOnly,
  });
  const marks = complete ? planMarks(obs, live, views, absence.next) : [];

  const report: SweepReport = {
    at: now,
    seen: {
      groups: obs.groups.length,
      members: obs.groups.reduce((sum, g) => sum + g.members.length, 0),
      nodes: obs.nodes.length,
      nodesInGroups: nodes.inGroups.length,
    },
    reportOnly,
    incompleteReads,
    listing: obs.listing ?? { source: 'catalog' },
    zones,
    ...summaries(config, observed, views),
    stale: staleness.stale,
    absent: staleness.absent,
    kept: staleness.kept,
    broken: repairs.broken,
    orphans: repairs.orphans,
    leftovers: leftovers.leftovers,
    draining: views
      .filter((v) => v.state === 'draining')
      .map((v) => ({ instanceId: v.member.id, name: v.member.name, group: v.group.key }))
      .sort(byKey((d) => `${d.group}\u0000${d.name}`)),
    drainLeftovers: leftovers.drainLeftovers,
    unidentified: nodes.unidentified.sort(),
    identity: [
      ...identity.findings,
      ...staleness.disputed.map((node) => ({
        node,
        reason: 'identity-disputed' as const,
        address: obs.nodes.find((n) => n.name === node)?.address ?? '',
      })),
    ],
    actions: gated.actions,
    refused: gated.refused,
  };
  return { report, actions: reportOnly.length > 0 ? [] : gated.actions, bucket: gated.bucket, marks };
}
