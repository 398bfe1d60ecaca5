import type { AutoscalingPolicy, ScalingSchedule } from '../gcp/autoscaler-schema';
import { applyMergePatch } from '../gcp/merge-patch';
import { floorFor } from './guardrails';
import type { Change } from './rules';
import { leaseSchedule, scheduleActive, scheduleName } from './schedule';
import type { Lease } from './state';
import type { Work } from './reconcile';

/**
 * Floors: one one-time scaling schedule per lease (schedule.ts). When GCE does not report a
 * lease's schedule ACTIVE, the autoscaler's floors are held by raising minNumReplicas instead, its
 * original recorded; the schedules stay (they end by themselves and do no harm when they run).
 */

/** GCE allows at most 128 scaling schedules per autoscaler. */
const maxSchedules = 128;

export type FloorLease = Lease & { change: Extract<Change, { type: 'raise-min' }> };

export interface FloorInput {
  prefix: string;
  /** The policy floors are computed from (floorBasePolicy: the original minimum during a fallback). */
  base: AutoscalingPolicy;
  now: number;
  /** Schedules found not ACTIVE after the bound by the caller's own reads. */
  inactiveSchedules: string[];
  /** How long after its write a schedule must read ACTIVE. */
  boundMs: number;
}

/** Our schedules: one per lease, recognised by the prefix; others are never touched. */
export function reconcileFloors(w: Work, leases: FloorLease[], f: FloorInput) {
  const schedules: Record<string, ScalingSchedule | null> = {};
  const current = w.policy.scalingSchedules ?? {};
  const desired = new Map<string, { s: ScalingSchedule; incidentId: string }>();
  for (const l of leases) {
    const s = leaseSchedule(l, floorFor(l.change, f.base, w.tier));
    desired.set(scheduleName(f.prefix, l.incidentId), { s, incidentId: l.incidentId });
  }
  const stale = Object.keys(current).filter((name) => name.startsWith(f.prefix) && !desired.has(name));
  for (const name of stale) {
    schedules[name] = null;
    w.reverted = true;
  }
  let count = Object.keys(current).length - stale.length;
  for (const [name, { s, incidentId }] of desired) {
    const cur = Object.prototype.hasOwnProperty.call(current, name) ? current[name] : undefined;
    const want = s.minRequiredReplicas ?? 0;
    if (!cur && count >= maxSchedules) {
      w.refused.push(
        `${incidentId}: the autoscaler already has ${maxSchedules} scaling schedules, GCE's limit`,
      );
    } else if (!cur || cur.disabled || (cur.minRequiredReplicas ?? 0) < want) {
      w.escalate(`schedule ${name} (floor ${want})`, () => {
        schedules[name] = s;
        if (!cur) count++;
      });
    } else if ((cur.minRequiredReplicas ?? 0) > want) {
      schedules[name] = s;
      w.reverted = true;
    } else if (
      cur.schedule !== s.schedule ||
      cur.durationSec !== s.durationSec ||
      cur.timeZone !== s.timeZone
    ) {
      schedules[name] = s;
      w.renewed = true;
    }
  }
  if (Object.keys(schedules).length) w.patch.scalingSchedules = schedules;
  reconcileMinimum(w, leases, f);
}

/**
 * A schedule of ours found not ACTIVE: by the caller's reads after the bound, or, on a later pass,
 * written (its lease granted or renewed) at least the bound ago and still not ACTIVE.
 */
function inactiveFloor(w: Work, leases: FloorLease[], f: FloorInput): boolean {
  const current = w.policy.scalingSchedules ?? {};
  return leases.some((l) => {
    const name = scheduleName(f.prefix, l.incidentId);
    const s = Object.prototype.hasOwnProperty.call(current, name) ? current[name] : undefined;
    if (!s || s.disabled) return false;
    if (f.inactiveSchedules.includes(name)) return true;
    return f.now - l.grantedAt >= f.boundMs && !scheduleActive(w.autoscaler, name);
  });
}

/**
 * The fallback: while it holds (an original minimum is recorded, or a schedule was found not
 * ACTIVE), minNumReplicas follows the floors our schedules grant once the patch is applied, so
 * guardrails and the cooldown act on the schedules alone; with no floor left the original returns.
 * Schedules this patch writes outside a fallback are to be verified (`w.verify`).
 */
function reconcileMinimum(w: Work, leases: FloorLease[], f: FloorInput) {
  const recorded = w.original.minNumReplicas;
  const cur = w.policy.minNumReplicas ?? 0;
  const written = Object.entries(w.patch.scalingSchedules ?? {}).filter(([, s]) => s !== null);
  if (recorded === undefined && !inactiveFloor(w, leases, f)) {
    w.verify = written.map(([name]) => name);
    return;
  }
  const base = f.base.minNumReplicas ?? 0;
  const after = applyMergePatch(w.policy, { scalingSchedules: w.patch.scalingSchedules ?? {} });
  const floors = leases.map((l) => {
    const s = after.scalingSchedules?.[scheduleName(f.prefix, l.incidentId)];
    return s && !s.disabled ? Math.min(s.minRequiredReplicas ?? 0, floorFor(l.change, f.base, w.tier)) : 0;
  });
  const want = Math.max(0, ...floors);
  if (want > base) {
    if (want > cur) {
      w.patch.minNumReplicas = want;
      w.fallback = true;
    } else if (want < cur) {
      w.patch.minNumReplicas = want;
      w.reverted = true;
    }
    w.original.minNumReplicas = base;
    return;
  }
  if (recorded !== undefined && cur !== base) {
    w.patch.minNumReplicas = base;
    w.reverted = true;
  }
  w.original.minNumReplicas = undefined;
}
