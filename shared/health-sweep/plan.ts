import { resolveBudget, scopeHolds, type HealthSweepConfig, type WatchedGroup } from './config';
import type { ManagedMember, Observation, ReadOutcome, SweepMark, SweepNode } from './observe';
import { take, type BucketState } from './token-bucket';

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
  | { type: 'purge-ledger' };

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

const MAX_ABSENT_COUNT = 1_000_000;

interface NodeInGroup {
  node: SweepNode;
  identity: NonNullable<SweepNode['identity']>;
  group: WatchedGroup;
}

/** The watched group a node's identity names, if any (metadata names a group by name only). */
function watchedGroupOf(config: HealthSweepConfig, node: SweepNode): WatchedGroup | undefined {
  const id = node.identity;
  if (!id) return undefined;
  return config.groups.find(
    (g) => g.project === id.project && g.name === id.group && scopeHolds(g.scope, id.zone),
  );
}

function liveIds(obs: Observation): Set<string> {
  const ids = new Set<string>();
  for (const g of obs.groups) for (const m of g.members) if (m.id !== undefined) ids.add(m.id);
  return ids;
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * Nodes of watched groups whose instance id is in no group: the sweep asks Compute about their
 * name, and a 404 (or another id under that name) makes them stale without waiting for N sweeps.
 */
export function lookupCandidates(config: HealthSweepConfig, obs: Observation, limit = 50): LookupCandidate[] {
  const live = liveIds(obs);
  const absent: Array<{ c: LookupCandidate; count: number }> = [];
  for (const node of obs.nodes) {
    const id = node.identity;
    if (!id || live.has(id.instanceId) || !watchedGroupOf(config, node)) continue;
    const count = obs.marks.get(id.instanceId)?.value?.absentCount ?? 0;
    absent.push({
      c: { instanceId: id.instanceId, project: id.project, zone: id.zone, name: node.name },
      count,
    });
  }
  // Those closest to N first: a lookup that finds the instance is what keeps its node.
  absent.sort((a, b) => b.count - a.count || (a.c.name < b.c.name ? -1 : a.c.name > b.c.name ? 1 : 0));
  return absent.slice(0, limit).map((a) => a.c);
}

type MemberState =
  'transitioning' | 'booting' | 'orphan' | 'draining' | 'failing' | 'broken' | 'healthy' | 'warning';

interface MemberView {
  member: ManagedMember & { id: string };
  group: WatchedGroup;
  state: MemberState;
  /** First time the current problem was seen. */
  since?: number;
}

/** Plans one sweep. `config` and `obs` are read only. */
export function planSweep(config: HealthSweepConfig, obs: Observation): SweepPlan {
  const now = obs.at;
  const t = config.thresholds;
  const observed = new Map(obs.groups.map((g) => [g.key, g]));
  const live = liveIds(obs);

  // A watched group without an observation was not read: the caller should have said so.
  const incompleteReads = obs.reads.filter((r) => r.status !== 'complete');
  for (const g of config.groups) {
    if (!observed.has(g.key) && !incompleteReads.some((r) => r.what === g.key)) {
      incompleteReads.push({ source: 'compute', what: g.key, status: 'failed', detail: 'not observed' });
    }
  }
  const complete = incompleteReads.length === 0;

  // Nodes by the instance id they claim, and the ones the sweep may act on.
  const nodesById = new Map<string, SweepNode[]>();
  const unidentified: string[] = [];
  const inGroups: NodeInGroup[] = [];
  for (const node of obs.nodes) {
    if (!node.identity) {
      unidentified.push(node.name);
      continue;
    }
    const list = nodesById.get(node.identity.instanceId);
    if (list) list.push(node);
    else nodesById.set(node.identity.instanceId, [node]);
    const group = watchedGroupOf(config, node);
    if (group) inGroups.push({ node, identity: node.identity, group });
  }
  const markOf = (id: string): SweepMark | null => obs.marks.get(id)?.value ?? null;
  // Ids the drain list names: instanceEvents is draining them (whatever the key's node name, so a
  // node registered under another name is not mistaken for a dead one either).
  const drainedIds = new Set<string>();
  for (const d of obs.drains.values()) if (d.value) drainedIds.add(d.value.instanceId);

  // Members: what Consul says about each one that exists.
  const views: MemberView[] = [];
  for (const g of config.groups) {
    for (const member of observed.get(g.key)?.members ?? []) {
      const id = member.id;
      if (id === undefined) continue;
      const m = { ...member, id };
      const mark = markOf(id);
      if (member.instanceStatus !== 'RUNNING' || member.currentAction !== 'NONE') {
        views.push({ member: m, group: g, state: 'transitioning' });
        continue;
      }
      // The node named like the instance if several claim its id (a copy of metadata proves nothing).
      const claims = nodesById.get(id) ?? [];
      const node = claims.find((n) => n.name === member.name) ?? claims[0];
      // Being drained: going away on purpose, so neither dead nor a repair candidate. Node
      // maintenance stays a second signal: the images' shutdown script (ilb-drain.sh) still sets it.
      if (drainedIds.has(id) || node?.health === 'maintenance') {
        views.push({ member: m, group: g, state: 'draining' });
      } else if (!node) {
        const since = mark?.missingSince ?? now;
        views.push({
          member: m,
          group: g,
          state: now - since >= t.bootGraceMs ? 'orphan' : 'booting',
          since,
        });
      } else if (node.health === 'critical') {
        const since = mark?.criticalSince ?? now;
        views.push({
          member: m,
          group: g,
          state: now - since >= t.brokenGraceMs ? 'broken' : 'failing',
          since,
        });
      } else {
        views.push({ member: m, group: g, state: node.health === 'passing' ? 'healthy' : 'warning' });
      }
    }
  }

  // Zones: a member looks dead without a node (past boot grace) or with a critical node.
  const zoneStats = new Map<string, { running: number; dead: number }>();
  for (const v of views) {
    if (v.state === 'transitioning' || v.state === 'booting' || v.state === 'draining') continue;
    const s = zoneStats.get(v.member.zone) ?? { running: 0, dead: 0 };
    s.running++;
    if (v.state === 'orphan' || v.state === 'failing' || v.state === 'broken') s.dead++;
    zoneStats.set(v.member.zone, s);
  }
  const zones: ZoneSummary[] = [...zoneStats.entries()]
    .map(([zone, s]) => ({
      zone,
      ...s,
      partitioned: s.running > 0 && s.dead / s.running > t.zoneDeadThreshold,
    }))
    .sort(byKey((z) => z.zone));
  const partitioned = new Set(zones.filter((z) => z.partitioned).map((z) => z.zone));
  const allDead = zones.length > 0 && zones.every((z) => z.partitioned);
  const reportOnly: SweepReport['reportOnly'] = [];
  if (!complete) reportOnly.push('incomplete-read');
  if (allDead) reportOnly.push('all-zones-dead');

  // Stale nodes.
  const stale: SweepReport['stale'] = [];
  const staleNodes: Array<{ node: SweepNode; finding: SweepReport['stale'][number] }> = [];
  const absent: NodeFinding[] = [];
  const kept: NodeFinding[] = [];
  const nextAbsent = new Map<string, number>();
  const absentCountOf = (id: string) => {
    let n = nextAbsent.get(id);
    if (n === undefined) {
      n = Math.min(MAX_ABSENT_COUNT, (markOf(id)?.absentCount ?? 0) + 1);
      nextAbsent.set(id, n);
    }
    return n;
  };
  // A group that was not read completely says nothing about its nodes' absence.
  const unreadGroups = new Set(incompleteReads.filter((r) => r.source === 'compute').map((r) => r.what));
  for (const { node, identity, group } of [...inGroups].sort(byKey((n) => n.node.name))) {
    const id = identity.instanceId;
    if (live.has(id) || unreadGroups.has(group.key)) continue;
    const finding: NodeFinding = {
      node: node.name,
      instanceId: id,
      zone: identity.zone,
      group: group.key,
      absentCount: absentCountOf(id),
    };
    const lookup = obs.lookups.get(id);
    if (lookup?.found && lookup.id === id) kept.push(finding);
    else if (lookup || finding.absentCount >= t.absentSweeps) {
      const s = { ...finding, reason: lookup ? ('not-found' as const) : ('absent' as const) };
      stale.push(s);
      staleNodes.push({ node, finding: s });
    } else absent.push(finding);
  }

  // Leftovers of instanceEvents: drain entries and records of an id that no group lists and no
  // node claims, N sweeps on. A drain entry of a gone id drains nothing (the HAProxy tier matches
  // ids), so the record's drain is not stranded by reaping both.
  const gone = (id: string) => !live.has(id) && !nodesById.has(id) && absentCountOf(id) >= t.absentSweeps;
  const drainLeftovers: SweepReport['drainLeftovers'] = [];
  const leftovers: SweepReport['leftovers'] = [];
  const leftoverActions: SweepAction[] = [];
  for (const [node, stored] of [...obs.drains.entries()].sort(byKey(([k]) => k))) {
    const instanceId = stored.value?.instanceId;
    if (instanceId === undefined || !gone(instanceId)) continue;
    drainLeftovers.push({ node, instanceId });
    leftoverActions.push({ type: 'delete-drain', node, instanceId, modifyIndex: stored.modifyIndex });
  }
  for (const [id, modifyIndex] of [...obs.records.entries()].sort(byKey(([k]) => k))) {
    if (!gone(id)) continue;
    leftovers.push({ instanceId: id });
    leftoverActions.push({ type: 'delete-record', instanceId: id, modifyIndex });
  }

  // Candidate actions, deregistrations first (cheapest to undo: an agent re-registers).
  const candidates: Array<{ action: SweepAction; zone: string; group?: WatchedGroup }> = staleNodes.map(
    ({ node, finding: s }) => ({
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
    }),
  );
  const broken: InstanceFinding[] = [];
  const orphans: InstanceFinding[] = [];
  const sortedViews = [...views].sort(byKey((v) => `${v.group.key}\u0000${v.member.name}`));
  for (const reason of ['broken', 'orphan'] as const) {
    for (const v of sortedViews) {
      if (v.state !== reason) continue;
      const finding: InstanceFinding = {
        instanceId: v.member.id,
        name: v.member.name,
        zone: v.member.zone,
        group: v.group.key,
        since: v.since ?? now,
      };
      (reason === 'broken' ? broken : orphans).push(finding);
      if (reason === 'orphan' && !config.repairOrphans) continue;
      candidates.push({
        action: {
          type: 'recreate',
          group: v.group.key,
          instance: v.member.instance,
          instanceId: v.member.id,
          name: v.member.name,
          zone: v.member.zone,
          reason,
        },
        zone: v.member.zone,
        group: v.group,
      });
    }
  }

  // Gate every candidate.
  const actions: SweepAction[] = [];
  const refused: Refusal[] = [];
  const recreated = new Map<string, number>();
  const runningOf = new Map<string, number>();
  for (const v of views) {
    if (v.state !== 'transitioning') runningOf.set(v.group.key, (runningOf.get(v.group.key) ?? 0) + 1);
  }
  let bucketState: BucketState | null =
    obs.bucket.value ?? (obs.bucket.modifyIndex > 0 ? { tokens: 0, at: now } : null);
  let bucketTouched = obs.bucket.value === null && obs.bucket.modifyIndex > 0;
  const sweepRefusal = reportOnly[0];
  for (const { action, zone, group } of candidates) {
    const refuse = (reason: RefusalReason) => refused.push({ action, reason });
    if (sweepRefusal) {
      refuse(sweepRefusal);
      continue;
    }
    if (partitioned.has(zone)) {
      refuse('zone-partitioned');
      continue;
    }
    if (group) {
      const g = observed.get(group.key);
      const members = g?.members ?? [];
      const done = recreated.get(group.key) ?? 0;
      const runningUntouched = (runningOf.get(group.key) ?? 0) - done;
      if (!g?.isStable) {
        refuse('group-unstable');
        continue;
      }
      if (done >= resolveBudget(group.maxRecreations, members.length, 'down-min-one')) {
        refuse('group-budget');
        continue;
      }
      if (runningUntouched - 1 < resolveBudget(group.healthyMinimum, members.length, 'up')) {
        refuse('healthy-minimum');
        continue;
      }
    }
    const took = take(bucketState, now, t.tokenBucket);
    bucketState = took.state;
    if (!took.taken) {
      refuse('rate-limited');
      continue;
    }
    bucketTouched = true;
    if (group) recreated.set(group.key, (recreated.get(group.key) ?? 0) + 1);
    actions.push(action);
  }
  for (const action of [...leftoverActions, { type: 'purge-ledger' } as const]) {
    if (sweepRefusal) refused.push({ action, reason: sweepRefusal });
    else actions.push(action);
  }

  const marks = complete ? planMarks(obs, live, views, nextAbsent) : [];
  const bucket =
    reportOnly.length === 0 && bucketTouched && bucketState
      ? { state: bucketState, cas: obs.bucket.modifyIndex }
      : null;

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

  const report: SweepReport = {
    at: now,
    seen: {
      groups: obs.groups.length,
      members: obs.groups.reduce((sum, g) => sum + g.members.length, 0),
      nodes: obs.nodes.length,
      nodesInGroups: inGroups.length,
    },
    reportOnly,
    incompleteReads,
    zones,
    groups: [...groups.values()],
    healthyMembers: [...healthy.values()].sort(byKey((h) => `${h.role}\u0000${h.zone}`)),
    stale,
    absent,
    kept,
    broken,
    orphans,
    leftovers,
    draining: views
      .filter((v) => v.state === 'draining')
      .map((v) => ({ instanceId: v.member.id, name: v.member.name, group: v.group.key }))
      .sort(byKey((d) => `${d.group}\u0000${d.name}`)),
    drainLeftovers,
    unidentified: unidentified.sort(),
    actions,
    refused,
  };
  return { report, actions: reportOnly.length > 0 ? [] : actions, bucket, marks };
}

/**
 * The marks to write: absence counts of ids known to Consul or KV but in no group, and when a
 * running member's problem (critical node, missing node) was first seen. A mark that says nothing
 * is deleted, so keys exist only for anomalies and writes grow with them, not with nodes.
 */
function planMarks(
  obs: Observation,
  live: ReadonlySet<string>,
  views: readonly MemberView[],
  nextAbsent: ReadonlyMap<string, number>,
): MarkWrite[] {
  const next = new Map<string, SweepMark>();
  for (const [id, count] of nextAbsent) if (!live.has(id)) next.set(id, { absentCount: count });
  for (const v of views) {
    if (v.state === 'failing' || v.state === 'broken') {
      next.set(v.member.id, { absentCount: 0, criticalSince: v.since });
    } else if (v.state === 'booting' || v.state === 'orphan') {
      next.set(v.member.id, { absentCount: 0, missingSince: v.since });
    }
  }
  const writes: MarkWrite[] = [];
  for (const [id, mark] of [...next.entries()].sort(byKey(([k]) => k))) {
    const stored = obs.marks.get(id);
    if (stored?.value && sameMark(stored.value, mark)) continue;
    writes.push({ op: 'put', instanceId: id, mark, cas: stored?.modifyIndex ?? 0 });
  }
  for (const [id, stored] of [...obs.marks.entries()].sort(byKey(([k]) => k))) {
    if (!next.has(id)) writes.push({ op: 'delete', instanceId: id, cas: stored.modifyIndex });
  }
  return writes;
}

const sameMark = (a: SweepMark, b: SweepMark) =>
  a.absentCount === b.absentCount && a.criticalSince === b.criticalSince && a.missingSince === b.missingSince;

/** A point of a custom metric (`custom.googleapis.com/ilb/...`), written as a gauge. */
export interface MetricPoint {
  type: string;
  labels: Record<string, string>;
  value: number;
}

const metric = (name: string) => `custom.googleapis.com/ilb/${name}`;

/**
 * The sweep's metric points: healthy members per role and zone, stale nodes, orphans, actions by
 * type, refused actions by reason, and the sweep's duration (measured by the caller).
 */
export function metricPoints(plan: SweepPlan, durationMs: number): MetricPoint[] {
  const { report } = plan;
  const points: MetricPoint[] = report.healthyMembers.map((h) => ({
    type: metric('healthy_members'),
    labels: { role: h.role, zone: h.zone },
    value: h.healthy,
  }));
  points.push({ type: metric('stale_nodes'), labels: {}, value: report.stale.length });
  points.push({ type: metric('orphans'), labels: {}, value: report.orphans.length });
  const actionTypes: SweepAction['type'][] = [
    'deregister',
    'recreate',
    'delete-drain',
    'delete-record',
    'purge-ledger',
  ];
  for (const type of actionTypes) {
    const value = plan.actions.filter((a) => a.type === type).length;
    points.push({ type: metric('actions'), labels: { action: type }, value });
  }
  const reasons = new Map<string, number>();
  for (const r of report.refused) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  for (const [reason, value] of [...reasons.entries()].sort(byKey(([k]) => k))) {
    points.push({ type: metric('refused_actions'), labels: { reason }, value });
  }
  points.push({ type: metric('sweep_duration_ms'), labels: {}, value: durationMs });
  return points;
}
