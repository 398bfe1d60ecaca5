import type { Autoscaler } from '../gcp/autoscaler-schema';
import type { GroupError, GroupErrorsApi, GroupRef } from '../gcp/groups';
import { groupRefOf } from '../gcp/groups';
import { customMetric, type MetricPoint } from '../gcp/monitoring';

/**
 * Whether a group can grow: the instance-creation errors it recorded lately (`listErrors`) and the
 * instances it still waits for. A floor above what a group stuck on quota or stock has reached is
 * not raised (a lease would only hold a target the group cannot meet, and say nothing).
 */

/** Codes GCE records when it cannot create an instance for capacity: quota or the zone's stock. */
export const capacityCodes: ReadonlySet<string> = new Set([
  'QUOTA_EXCEEDED',
  'ZONE_RESOURCE_POOL_EXHAUSTED',
  'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
]);

/** How far back errors count, and how many pages of them are read at most. */
export const errorWindow = { ms: 15 * 60_000, maxPages: 4 } as const;

export const growthMetrics = {
  creationErrors: customMetric('instance_creation_errors'),
  unreachableFloor: customMetric('scaling_alerts/unreachable_floor'),
} as const;

export interface Growth {
  group: GroupRef;
  /** Instances the group has: its target size less those still being created. */
  reached: number;
  /** Instances it is still trying to create. */
  creating: number;
  /** Capacity error codes it recorded within the window. */
  blockedBy: string[];
}

/**
 * Why a floor cannot be raised, or null. Only a group still trying to create instances (some are
 * pending) after capacity errors in the window counts as stuck: once the pending ones came up, the
 * errors are history and the group can grow again.
 */
export function unreachableFloor(floor: number, growth: Growth | undefined): string | null {
  if (!growth || !growth.blockedBy.length || growth.creating === 0 || floor <= growth.reached) return null;
  return (
    `unreachable-floor: ${growth.group.name} has ${growth.reached} instances and cannot create more ` +
    `(${growth.blockedBy.join(', ')}; ${growth.creating} pending); floor ${floor} not raised`
  );
}

export const unreachablePoint = (growth: Growth): MetricPoint => ({
  type: growthMetrics.unreachableFloor,
  labels: { group: growth.group.name },
  value: 1,
});

const locationOf = (g: GroupRef) => (g.scope.kind === 'zone' ? g.scope.zone : g.scope.region);

/** One point per error code: how many the group recorded within the window. */
export function creationErrorPoints(group: GroupRef, errors: GroupError[]): MetricPoint[] {
  const counts = new Map<string, number>();
  for (const e of errors) counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
  return [...counts].map(([code, value]) => ({
    type: growthMetrics.creationErrors,
    labels: { group: group.name, location: locationOf(group), code },
    value,
  }));
}

/** The autoscaler's group, its recent errors and size: two reads. Undefined for an unknown target. */
export async function readGrowth(
  api: GroupErrorsApi,
  autoscaler: Autoscaler,
  now: number,
): Promise<{ growth: Growth; errors: GroupError[] } | undefined> {
  const group = typeof autoscaler.target === 'string' ? groupRefOf(autoscaler.target) : undefined;
  if (!group) return undefined;
  const [{ errors }, size] = await Promise.all([
    api.listErrors(group, { sinceMs: now - errorWindow.ms, maxPages: errorWindow.maxPages }),
    api.size(group),
  ]);
  const blockedBy = [...new Set(errors.map((e) => e.code).filter((c) => capacityCodes.has(c)))].sort();
  const growth = {
    group,
    reached: Math.max(0, size.targetSize - size.creating),
    creating: size.creating,
    blockedBy,
  };
  return { growth, errors };
}
