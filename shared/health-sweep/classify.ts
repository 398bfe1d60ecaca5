import { scopeHolds, type HealthSweepConfig, type SweepThresholds, type WatchedGroup } from './config';
import type { GroupObservation, ManagedMember, Observation, SweepNode } from './observe';
import { byKey, type LookupCandidate, type ZoneSummary } from './report';

/**
 * The planner's first step: what each node and each running member of the watched groups is, and
 * which zones look partitioned. Pure.
 */

export interface NodeInGroup {
  node: SweepNode;
  identity: NonNullable<SweepNode['identity']>;
  group: WatchedGroup;
}

/**
 * `unreadable`: its node's checks were oversized (read.ts); `unlisted`: the nodes were listed from
 * the gossip members (read-fallback.ts) and none named like it claims its id, which proves no
 * absence (a catalog-only node may hold it). Neither is judged or repaired this sweep.
 */
export type MemberState =
  | 'transitioning'
  | 'booting'
  | 'orphan'
  | 'draining'
  | 'unreadable'
  | 'unlisted'
  | 'failing'
  | 'broken'
  | 'healthy'
  | 'warning';

export interface MemberView {
  member: ManagedMember & { id: string };
  group: WatchedGroup;
  state: MemberState;
  /** First time the current problem was seen. */
  since?: number;
}

/** The watched group a node's identity names, if any (metadata names a group by name only). */
export function watchedGroupOf(config: HealthSweepConfig, node: SweepNode): WatchedGroup | undefined {
  const id = node.identity;
  if (!id) return undefined;
  return config.groups.find(
    (g) => g.project === id.project && g.name === id.group && scopeHolds(g.scope, id.zone),
  );
}

/** Instance ids some watched group lists. */
export function liveIds(obs: Observation): Set<string> {
  const ids = new Set<string>();
  for (const g of obs.groups) for (const m of g.members) if (m.id !== undefined) ids.add(m.id);
  return ids;
}

/**
 * Nodes of watched groups whose instance id is in no group: the sweep asks Compute about their
 * name, and a 404 (or another id under that name) makes them stale without waiting for N sweeps.
 */
export function lookupCandidates(config: HealthSweepConfig, obs: Observation, limit = 50): LookupCandidate[] {
  const live = liveIds(obs);
  const absent: Array<{ c: LookupCandidate; count: number }> = [];
  for (const node of obs.nodes) {
    const id = node.identity;
    if (!id || node.health === 'unknown' || live.has(id.instanceId) || !watchedGroupOf(config, node))
      continue;
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

export interface NodeIndex {
  /** Nodes by the instance id they claim. */
  byId: Map<string, SweepNode[]>;
  /** Nodes without (valid) identity metadata: never acted on. */
  unidentified: string[];
  /** Nodes whose identity names a watched group: the ones the sweep may act on (never an oversized one). */
  inGroups: NodeInGroup[];
}

export function indexNodes(config: HealthSweepConfig, obs: Observation): NodeIndex {
  const byId = new Map<string, SweepNode[]>();
  const unidentified: string[] = [];
  const inGroups: NodeInGroup[] = [];
  for (const node of obs.nodes) {
    if (!node.identity) {
      unidentified.push(node.name);
      continue;
    }
    const list = byId.get(node.identity.instanceId);
    if (list) list.push(node);
    else byId.set(node.identity.instanceId, [node]);
    const group = watchedGroupOf(config, node);
    // An oversized node still claims its id (its member is unreadable, not missing), but is never acted on.
    if (group && node.health !== 'unknown') inGroups.push({ node, identity: node.identity, group });
  }
  return { byId, unidentified, inGroups };
}

/** What Consul says about each member that exists, by the marks of earlier sweeps. */
export function memberViews(
  config: HealthSweepConfig,
  obs: Observation,
  observed: ReadonlyMap<string, GroupObservation>,
  nodesById: ReadonlyMap<string, SweepNode[]>,
): MemberView[] {
  const now = obs.at;
  const t = config.thresholds;
  // Ids the drain list names: instanceEvents is draining them (whatever the key's node name, so a
  // node registered under another name is not mistaken for a dead one either).
  const drainedIds = new Set<string>();
  for (const d of obs.drains.values()) if (d.value) drainedIds.add(d.value.instanceId);
  const views: MemberView[] = [];
  for (const g of config.groups) {
    for (const member of observed.get(g.key)?.members ?? []) {
      const id = member.id;
      if (id === undefined) continue;
      const m = { ...member, id };
      const mark = obs.marks.get(id)?.value ?? null;
      if (member.instanceStatus !== 'RUNNING' || member.currentAction !== 'NONE') {
        views.push({ member: m, group: g, state: 'transitioning' });
        continue;
      }
      // The node named like the instance if several claim its id (a copy of metadata proves nothing).
      const claims = nodesById.get(id) ?? [];
      // Listed from the members, another claim may be missing: only the node named like it counts.
      const node = claims.find((n) => n.name === member.name) ?? (obs.listing ? undefined : claims[0]);
      // Being drained: going away on purpose, so neither dead nor a repair candidate. Node
      // maintenance stays a second signal: the images' shutdown script (ilb-drain.sh) still sets it.
      if (drainedIds.has(id) || node?.health === 'maintenance') {
        views.push({ member: m, group: g, state: 'draining' });
      } else if (node?.health === 'unknown') {
        views.push({ member: m, group: g, state: 'unreadable' });
      } else if (!node && obs.listing) {
        views.push({ member: m, group: g, state: 'unlisted' });
      } else if (!node) {
        const since = mark?.missingSince ?? now;
        const state = now - since >= t.bootGraceMs ? 'orphan' : 'booting';
        views.push({ member: m, group: g, state, since });
      } else if (node.health === 'critical') {
        const since = mark?.criticalSince ?? now;
        const state = now - since >= t.brokenGraceMs ? 'broken' : 'failing';
        views.push({ member: m, group: g, state, since });
      } else {
        views.push({ member: m, group: g, state: node.health === 'passing' ? 'healthy' : 'warning' });
      }
    }
  }
  return views;
}

/**
 * Zones: a member looks dead without a node (past boot grace) or with a critical node. An
 * unreadable one counts neither way: its VM cannot tip its zone into "partitioned" (and so stop
 * every repair there) nor dilute the dead share of its zone. An unlisted one counts dead, as it
 * would with the full listing unless a catalog-only node holds it: a listing without those nodes
 * may only make the zone gate stricter.
 */
export function zoneSummaries(
  views: readonly MemberView[],
  t: Pick<SweepThresholds, 'zoneDeadThreshold'>,
): ZoneSummary[] {
  const zoneStats = new Map<string, { running: number; dead: number }>();
  for (const v of views) {
    if (['transitioning', 'booting', 'draining', 'unreadable'].includes(v.state)) continue;
    const s = zoneStats.get(v.member.zone) ?? { running: 0, dead: 0 };
    s.running++;
    if (['orphan', 'unlisted', 'failing', 'broken'].includes(v.state)) s.dead++;
    zoneStats.set(v.member.zone, s);
  }
  return [...zoneStats.entries()]
    .map(([zone, s]) => ({
      zone,
      ...s,
      partitioned: s.running > 0 && s.dead / s.running > t.zoneDeadThreshold,
    }))
    .sort(byKey((z) => z.zone));
}
