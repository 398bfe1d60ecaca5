import type { MemberView } from './classify';
import type { Observation, SweepMark } from './observe';
import { byKey, type MarkWrite } from './report';

/**
 * The marks to write: absence counts of ids known to Consul or KV but in no group, and when a
 * running member's problem (critical node, missing node) was first seen. A mark that says nothing
 * is deleted, so keys exist only for anomalies and writes grow with them, not with nodes. Pure.
 */
export function planMarks(
  obs: Observation,
  live: ReadonlySet<string>,
  views: readonly MemberView[],
  nextAbsent: ReadonlyMap<string, number>,
): MarkWrite[] {
  const next = new Map<string, SweepMark>();
  for (const [id, count] of nextAbsent) if (!live.has(id)) next.set(id, { absentCount: count });
  // An oversized node's instance was not judged this sweep: its mark stays as it was.
  for (const n of obs.nodes) {
    const kept = n.health === 'unknown' && n.identity ? obs.marks.get(n.identity.instanceId)?.value : null;
    if (kept && n.identity) next.set(n.identity.instanceId, kept);
  }
  // Listed from the gossip members, the sweep judged only what it listed: the marks of members it
  // did not find and of ids no listed node claims stay as they were, neither advanced nor dropped.
  if (obs.listing) {
    const unlisted = new Set(views.filter((v) => v.state === 'unlisted').map((v) => v.member.id));
    for (const [id, stored] of obs.marks) {
      if (stored.value && !next.has(id) && (unlisted.has(id) || !live.has(id))) next.set(id, stored.value);
    }
  }
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
