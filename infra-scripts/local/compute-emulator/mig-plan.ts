import type { Igm, Instance, Slot } from './state';

/** One thing a MIG does to one of its names. Planned from state alone, carried out by the controller. */
export type Step =
  | { kind: 'create'; name: string; zone: string; reason: 'scale-out' | 'repair' }
  | { kind: 'delete'; name: string; zone: string; reason: 'requested' | 'scale-in' }
  | { kind: 'recreate'; name: string; zone: string; reason: 'requested' | 'repair' }
  | { kind: 'abandon'; name: string; zone: string };

export interface Plan {
  /** Names the group adds to reach its target size. */
  add: Slot[];
  steps: Step[];
}

/**
 * Level-triggered reconcile of a MIG: compares its target size and per-name wishes with the instances
 * that exist and plans the steps to converge. Names with an action in flight are left alone, so the
 * plan is safe to recompute at any time.
 */
export function planReconcile(
  igm: Igm,
  instanceOf: (slot: Slot) => Instance | undefined,
  newName: () => string,
): Plan {
  const steps: Step[] = [];
  const idle = (s: Slot) => s.action === 'NONE';
  for (const s of igm.slots.filter(idle)) {
    if (s.want === 'abandon') steps.push({ kind: 'abandon', name: s.name, zone: s.zone });
    else if (s.want === 'delete')
      steps.push({ kind: 'delete', name: s.name, zone: s.zone, reason: 'requested' });
    else if (s.want === 'recreate')
      steps.push({ kind: 'recreate', name: s.name, zone: s.zone, reason: 'requested' });
  }

  // A name being recreated still counts toward the target size.
  const kept = igm.slots.filter((s) => s.want === 'keep' || s.want === 'recreate');
  const add: Slot[] = [];
  if (kept.length < igm.targetSize) {
    const perZone = new Map(igm.zones.map((z) => [z, 0]));
    for (const s of kept) perZone.set(s.zone, (perZone.get(s.zone) ?? 0) + 1);
    const taken = new Set(igm.slots.map((s) => s.name));
    for (let i = kept.length; i < igm.targetSize; i++) {
      const zone = [...perZone.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]![0];
      perZone.set(zone, perZone.get(zone)! + 1);
      let name = newName();
      for (let tries = 0; taken.has(name) && tries < 100; tries++) name = newName();
      taken.add(name);
      add.push({ name, zone, action: 'NONE', want: 'keep' });
      steps.push({ kind: 'create', name, zone, reason: 'scale-out' });
    }
  }

  const victims = new Set<string>();
  if (kept.length > igm.targetSize) {
    // Scale in drops what serves least first: missing or stopped instances, then the newest ones.
    const rank = (s: Slot): [number, string] => {
      const inst = instanceOf(s);
      return [inst?.status === 'RUNNING' && !inst.hung ? 1 : 0, inst?.creationTimestamp ?? ''];
    };
    const candidates = kept
      .filter((s) => idle(s) && s.want === 'keep')
      .sort(
        (a, b) =>
          rank(a)[0] - rank(b)[0] || rank(b)[1].localeCompare(rank(a)[1]) || a.name.localeCompare(b.name),
      );
    for (const s of candidates.slice(0, kept.length - igm.targetSize)) {
      victims.add(s.name);
      steps.push({ kind: 'delete', name: s.name, zone: s.zone, reason: 'scale-in' });
    }
  }

  for (const s of kept.filter((s) => idle(s) && s.want === 'keep')) {
    if (victims.has(s.name)) continue;
    const inst = instanceOf(s);
    if (!inst) steps.push({ kind: 'create', name: s.name, zone: s.zone, reason: 'repair' });
    else if (!inst.busy && inst.status === 'TERMINATED')
      steps.push({ kind: 'recreate', name: s.name, zone: s.zone, reason: 'repair' });
  }
  return { add, steps };
}
