import { activeSince, parseCron } from './cron';
import type { AutoscalingPolicy, StatusDetail } from './state';

/** What the autoscaler observed of one instance of its group. */
export interface InstanceSignal {
  /** Seconds since the instance was created; younger than the cool-down means still initializing. */
  ageSec: number;
  /** CPU utilization, 0..1, if known. */
  cpu?: number;
  /** Latest value of each custom metric for this instance, by metric type. */
  metrics: Record<string, number | undefined>;
}

export interface Recommendation {
  at: number;
  /** What the signals asked for, clamped to [min, max], before stabilization and scale-in limits. */
  raw: number;
  /** The size the group was given. */
  size: number;
}

export interface AutoscaleInput {
  policy: AutoscalingPolicy;
  targetSize: number;
  signals: InstanceSignal[];
  /** Earlier recommendations, oldest first. */
  history: Recommendation[];
  now: number;
  /** GCE keeps the highest recommendation of the last 10 minutes before scaling in. */
  stabilizationSec: number;
  /** The largest minRequiredReplicas of the scaling schedules active now (scheduleState). */
  scheduledMinimum?: number;
}

export interface ScheduleStatus {
  state: 'ACTIVE' | 'READY' | 'DISABLED' | 'OBSOLETE';
  lastStartTime?: string;
}

/**
 * Whether a start already past when the schedule was written counts. The reference does not say
 * (schedule.ts in shared/scaling-alerts cites what it does say): `active` lets it count, as a
 * schedule "is active from its start time and for its configured duration" reads; `never` counts
 * only starts at or after the write, so a one-time schedule written within its start minute never
 * becomes active (OBSOLETE).
 */
export type PastScheduleStart = 'active' | 'never';

export interface ScheduleOptions {
  pastStart?: PastScheduleStart;
  /** When each schedule was last created or changed (ms), for `never`. */
  writtenAt?: Record<string, number>;
}

/**
 * Which scaling schedules are active at `now`: a schedule is active for durationSec from each start
 * its cron expression names (read in its time zone, UTC by default); disabled ones never are. Overlapping
 * schedules give the largest minRequiredReplicas (AutoscalingPolicy.scalingSchedules, Compute v1).
 * States as in ScalingScheduleStatus.state of the Compute v1 reference.
 */
export function scheduleState(
  policy: AutoscalingPolicy,
  now: number,
  options: ScheduleOptions = {},
): { minimum: number | undefined; status: Record<string, ScheduleStatus> } {
  let minimum: number | undefined;
  const status: Record<string, ScheduleStatus> = {};
  for (const [name, s] of Object.entries(policy.scalingSchedules ?? {})) {
    if (s.disabled) {
      status[name] = { state: 'DISABLED' };
      continue;
    }
    const cron = parseCron(s.schedule);
    const since = activeSince(cron, s.durationSec, now, s.timeZone || 'UTC');
    const written = options.writtenAt?.[name];
    const ignored =
      since !== undefined && options.pastStart === 'never' && written !== undefined && since < written;
    if (since === undefined || ignored) {
      // A start ignored for good on a cron with a year: it will never become active again.
      status[name] = { state: ignored && cron.year ? 'OBSOLETE' : 'READY' };
      continue;
    }
    status[name] = { state: 'ACTIVE', lastStartTime: new Date(since).toISOString() };
    minimum = Math.max(minimum ?? 0, s.minRequiredReplicas);
  }
  return { minimum, status };
}

export interface AutoscaleDecision {
  raw: number;
  recommendedSize: number;
  details: StatusDetail[];
}

/**
 * The autoscaler's decision, a pure function of policy, signal and history, following GCE's rules:
 * each utilization signal asks for ceil(total / target) instances and the largest ask wins; the
 * result is clamped to [min, max]; scale-in is held to the highest raw recommendation within the
 * stabilization window and bounded by scale-in controls; `mode` can forbid scaling in or any change.
 */
export function recommend(input: AutoscaleInput): AutoscaleDecision {
  const { policy, targetSize, now } = input;
  const details: StatusDetail[] = [];
  if (policy.mode === 'OFF') {
    return {
      raw: targetSize,
      recommendedSize: targetSize,
      details: [{ type: 'MODE_OFF', message: 'Autoscaling is turned off; the group size is not changed.' }],
    };
  }
  const ready = input.signals.filter((s) => s.ageSec >= policy.coolDownPeriodSec);
  const asks: number[] = [];
  if (policy.cpuUtilization && ready.some((s) => s.cpu !== undefined)) {
    const values = ready.flatMap((s) => (s.cpu === undefined ? [] : [s.cpu]));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    asks.push(Math.ceil((mean * targetSize) / policy.cpuUtilization.utilizationTarget - 1e-9));
  }
  for (const m of policy.customMetricUtilizations) {
    const values = ready.flatMap((s) => {
      const v = s.metrics[m.metric];
      return v === undefined ? [] : [v];
    });
    if (values.length === 0) {
      details.push({
        type: 'MISSING_CUSTOM_METRIC_DATA_POINTS',
        message: `No data points for ${m.metric} from the group's initialized instances.`,
      });
      continue;
    }
    const total = values.reduce((a, b) => a + b, 0);
    if (m.singleInstanceAssignment) asks.push(Math.ceil(total / m.singleInstanceAssignment - 1e-9));
    else if (m.utilizationTarget) {
      const mean = total / values.length;
      asks.push(Math.ceil((mean * targetSize) / m.utilizationTarget - 1e-9));
    }
  }

  // GCE reports active schedules in scalingScheduleStatus, not in statusDetails.
  if (input.scheduledMinimum !== undefined) asks.push(input.scheduledMinimum);
  let size = asks.length ? Math.max(...asks) : targetSize;
  if (size > policy.maxNumReplicas) {
    details.push({
      type: 'CAPPED_AT_MAX_NUM_REPLICAS',
      message: `The group needs ${size} instances but is capped at ${policy.maxNumReplicas}.`,
    });
  }
  size = Math.min(Math.max(size, policy.minNumReplicas), policy.maxNumReplicas);
  const raw = size;

  if (size < targetSize) {
    const recent = input.history.filter((r) => now - r.at <= input.stabilizationSec * 1000).map((r) => r.raw);
    size = Math.min(targetSize, Math.max(size, ...recent));
    const control = policy.scaleInControl;
    const cap = control?.maxScaledInReplicas;
    if (cap && (cap.fixed !== undefined || cap.percent !== undefined)) {
      const windowSec = control.timeWindowSec ?? 600;
      const peak = Math.max(
        targetSize,
        ...input.history.filter((r) => now - r.at <= windowSec * 1000).map((r) => r.size),
      );
      const allowed = cap.fixed ?? Math.ceil(((cap.percent ?? 0) / 100) * peak);
      size = Math.max(size, peak - allowed);
    }
  }
  if ((policy.mode === 'ONLY_SCALE_OUT' || policy.mode === 'ONLY_UP') && size < targetSize) {
    details.push({ type: `MODE_${policy.mode}`, message: `Mode ${policy.mode} does not scale in.` });
    size = targetSize;
  }
  return { raw, recommendedSize: size, details };
}
