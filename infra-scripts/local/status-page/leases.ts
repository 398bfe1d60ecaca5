/**
 * scalingAlerts' leases as the status page lists them: the records in Consul KV (attacker-controlled:
 * parsed with the function's own schemas, bounded in number) and the scaling schedules that GCE (the
 * emulator) holds and ends by itself.
 */
import { defaultKvPrefix } from '../../../shared/contract';
import { readJson } from '../../../shared/consul';
import { autoscalingPolicySchema } from '../../../shared/gcp/autoscaler-schema';
import { autoscalerStateSchema, type Lease } from '../../../shared/scaling-alerts/state';
import type { Change } from '../../../shared/scaling-alerts/rules';
import type { RunningEmulator } from '../compute-emulator';
import { activeSince, parseCron } from '../compute-emulator/cron';
import type { ConsulCluster } from '../launch';

/** At most this many records are read per refresh, whatever KV holds. */
export const maxRecords = 100;

export interface LeaseRow {
  autoscaler: string;
  incidentId: string;
  rule: string;
  tier: string;
  change: string;
  grantedAt: number;
  expiresAt: number;
}

export interface ScheduleRow {
  autoscaler: string;
  name: string;
  minRequiredReplicas: number | null;
  durationSec: number | null;
  state: string;
  /** When the schedule ends (ms), if its start is known. */
  end: number | null;
}

export interface LeaseView {
  leases: LeaseRow[];
  /** KV keys under the prefix that do not hold a valid record. */
  invalid: string[];
  /** Keys beyond `maxRecords` not read. */
  skipped: number;
  schedules: ScheduleRow[];
  /** Why the KV records could not be read, if they could not. */
  error?: string;
}

/** Pure: a change in a few words. */
export function describeChange(c: Change): string {
  switch (c.type) {
    case 'raise-min':
      return c.to !== undefined ? `raise floor to ${c.to}` : `raise floor by ${c.by ?? '?'}`;
    case 'cpu-target':
      return `CPU target ${c.target}`;
    case 'lb-target':
      return `LB target ${c.target}`;
    case 'custom-metric-target':
      return `target ${c.target} of ${c.metric}`;
    case 'scale-in-control':
      return `scale-in ≤ ${c.maxScaledInReplicas} per ${c.timeWindowSec} s`;
    case 'mode':
      return `mode ${c.mode}`;
  }
}

const oneTime = /^(\d{1,2}) (\d{1,2}) (\d{1,2}) (\d{1,2}) \* (\d{4})$/;

/**
 * Pure: when a schedule ends. An active one ends `durationSec` after its start; a one-time schedule
 * in UTC (the kind scalingAlerts writes: minute, hour, day, month and year fixed) after its only start.
 */
export function scheduleEnd(
  s: { schedule?: string | null; timeZone?: string | null; durationSec?: number | null },
  now: number,
): number | null {
  if (!s.schedule || !s.durationSec) return null;
  const utc = !s.timeZone || s.timeZone === 'UTC' || s.timeZone === 'Etc/UTC';
  const m = oneTime.exec(s.schedule.trim());
  if (m && utc) {
    const [mi, h, d, mo, y] = m.slice(1).map(Number) as [number, number, number, number, number];
    return Date.UTC(y, mo - 1, d, h, mi) + s.durationSec * 1000;
  }
  try {
    const since = activeSince(parseCron(s.schedule), s.durationSec, now, s.timeZone || 'UTC');
    return since === undefined ? null : since + s.durationSec * 1000;
  } catch {
    return null;
  }
}

/** Pure: the scaling schedules of the emulator's autoscalers. */
export function scheduleRows(
  autoscalers: readonly {
    name: string;
    policy: unknown;
    scheduleStatus?: Record<string, { state: string }>;
  }[],
  now: number,
): ScheduleRow[] {
  return autoscalers.flatMap((a) => {
    const policy = autoscalingPolicySchema.safeParse(a.policy);
    if (!policy.success) return [];
    return Object.entries(policy.data.scalingSchedules ?? {})
      .map(([name, s]) => ({
        autoscaler: a.name,
        name,
        minRequiredReplicas: s.minRequiredReplicas ?? null,
        durationSec: s.durationSec ?? null,
        state: s.disabled ? 'DISABLED' : (a.scheduleStatus?.[name]?.state ?? 'unknown'),
        end: scheduleEnd(s, now),
      }))
      .sort((x, y) => x.name.localeCompare(y.name));
  });
}

/** Pure: the lease rows of one autoscaler's record, soonest expiry first. */
export function leaseRows(autoscaler: string, leases: Record<string, Lease>): LeaseRow[] {
  return Object.values(leases)
    .map((l) => ({
      autoscaler,
      incidentId: l.incidentId,
      rule: l.rule,
      tier: l.tier,
      change: describeChange(l.change),
      grantedAt: l.grantedAt,
      expiresAt: l.expiresAt,
    }))
    .sort((a, b) => a.expiresAt - b.expiresAt);
}

/** Reads scalingAlerts' records from KV and the schedules from the emulator. */
export async function leaseView(
  consul: ConsulCluster,
  compute: RunningEmulator,
  kvPrefix: string = defaultKvPrefix,
  now: number = Date.now(),
): Promise<LeaseView> {
  const schedules = scheduleRows(
    compute.emulator
      .allAutoscalers()
      .map((a) => ({ name: a.name, policy: a.policy, scheduleStatus: a.scheduleStatus })),
    now,
  );
  const prefix = `${kvPrefix}scaling-alerts/autoscalers/`;
  try {
    return await consul.read(async (c) => {
      const keys = (await c.kv.keys(prefix)).filter((k) => k.startsWith(prefix) && !k.endsWith('/')).sort();
      const leases: LeaseRow[] = [];
      const invalid: string[] = [];
      for (const key of keys.slice(0, maxRecords)) {
        const stored = await readJson(c.kv, key, autoscalerStateSchema);
        if (!stored) continue;
        const autoscaler = key.slice(prefix.length);
        if (stored.value) leases.push(...leaseRows(autoscaler, stored.value.leases));
        else invalid.push(autoscaler);
      }
      return { leases, invalid, skipped: Math.max(keys.length - maxRecords, 0), schedules };
    });
  } catch (err) {
    return {
      leases: [],
      invalid: [],
      skipped: 0,
      schedules,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}
