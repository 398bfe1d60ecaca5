import type { NodeInGroup } from './classify';
import type { HealthSweepConfig } from './config';
import type { Observation, ReadOutcome, SweepNode } from './observe';
import { byKey, type NodeFinding, type SweepAction, type SweepReport } from './report';

/**
 * What the sweep reaps: nodes whose instance is gone (stale) and what instanceEvents left behind of
 * gone instances (drain entries, records). Pure.
 */

const MAX_ABSENT_COUNT = 1_000_000;

/** Absence counts of this sweep, one more than the mark's, computed once per id. */
export function absenceCounter(obs: Observation) {
  const next = new Map<string, number>();
  const countOf = (id: string) => {
    let n = next.get(id);
    if (n === undefined) {
      n = Math.min(MAX_ABSENT_COUNT, (obs.marks.get(id)?.value?.absentCount ?? 0) + 1);
      next.set(id, n);
    }
    return n;
  };
  return { countOf, next: next as ReadonlyMap<string, number> };
}

export interface Staleness {
  stale: SweepReport['stale'];
  staleNodes: Array<{ node: SweepNode; finding: SweepReport['stale'][number] }>;
  absent: NodeFinding[];
  kept: NodeFinding[];
  /** Kept because gossip backs them at their address, though their metadata names a gone id. */
  disputed: string[];
}

/** Nodes of watched groups whose instance id no group lists: stale after N sweeps or a 404. */
export function findStale(
  config: HealthSweepConfig,
  obs: Observation,
  seen: {
    live: ReadonlySet<string>;
    inGroups: readonly NodeInGroup[];
    incompleteReads: readonly ReadOutcome[];
    countOf: (id: string) => number;
    /** Alive gossip members at their node's address (identity.ts). */
    alive: ReadonlySet<string>;
  },
): Staleness {
  const out: Staleness = { stale: [], staleNodes: [], absent: [], kept: [], disputed: [] };
  // A group that was not read completely says nothing about its nodes' absence.
  const unreadGroups = new Set(seen.incompleteReads.filter((r) => r.source === 'compute').map((r) => r.what));
  for (const { node, identity, group } of [...seen.inGroups].sort(byKey((n) => n.node.name))) {
    const id = identity.instanceId;
    if (seen.live.has(id) || unreadGroups.has(group.key)) continue;
    const finding: NodeFinding = {
      node: node.name,
      instanceId: id,
      zone: identity.zone,
      group: group.key,
      absentCount: seen.countOf(id),
    };
    const lookup = obs.lookups.get(id);
    if (lookup?.found && lookup.id === id) out.kept.push(finding);
    else if (seen.alive.has(node.name) && lookup?.found !== false) {
      // A live agent answers for this node and Compute has an instance of that name: its id was
      // rewritten, never deregister it for that; its agent writes its own metadata again at the
      // next anti-entropy sync. A Compute 404 outweighs gossip that has not yet seen the agent die.
      out.kept.push(finding);
      out.disputed.push(node.name);
    } else if (lookup || finding.absentCount >= config.thresholds.absentSweeps) {
      const s = { ...finding, reason: lookup ? ('not-found' as const) : ('absent' as const) };
      out.stale.push(s);
      out.staleNodes.push({ node, finding: s });
    } else out.absent.push(finding);
  }
  return out;
}

/**
 * Leftovers of instanceEvents: drain entries and records of an id that no group lists and no node
 * claims, N sweeps on. A drain entry of a gone id drains nothing (the HAProxy tier matches ids), so
 * the record's drain is not stranded by reaping both.
 */
export function findLeftovers(
  config: HealthSweepConfig,
  obs: Observation,
  seen: {
    live: ReadonlySet<string>;
    nodesById: ReadonlyMap<string, unknown>;
    countOf: (id: string) => number;
  },
) {
  const gone = (id: string) =>
    !seen.live.has(id) && !seen.nodesById.has(id) && seen.countOf(id) >= config.thresholds.absentSweeps;
  const drainLeftovers: SweepReport['drainLeftovers'] = [];
  const leftovers: SweepReport['leftovers'] = [];
  const actions: SweepAction[] = [];
  for (const [node, stored] of [...obs.drains.entries()].sort(byKey(([k]) => k))) {
    const instanceId = stored.value?.instanceId;
    if (instanceId === undefined || !gone(instanceId)) continue;
    drainLeftovers.push({ node, instanceId });
    actions.push({ type: 'delete-drain', node, instanceId, modifyIndex: stored.modifyIndex });
  }
  for (const [id, modifyIndex] of [...obs.records.entries()].sort(byKey(([k]) => k))) {
    if (!gone(id)) continue;
    leftovers.push({ instanceId: id });
    actions.push({ type: 'delete-record', instanceId: id, modifyIndex });
  }
  return { drainLeftovers, leftovers, actions };
}
