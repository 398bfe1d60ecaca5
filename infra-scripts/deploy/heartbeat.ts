import { customMetric } from '../../shared/gcp/monitoring';
import type { ResolvedConfig } from './config';
import { APP_LABEL } from './steps/names';

/**
 * The seconds between two runs of a cron schedule, for the forms the deploy accepts for
 * `healthSweepSchedule` (every day, month and weekday): `*` or `*\/n` minutes, a list of minutes,
 * or a fixed minute of every (or every n-th) hour, or of one hour a day. Anything else: undefined.
 */
export function scheduleIntervalSec(schedule: string): number | undefined {
  const f = schedule.trim().split(/\s+/);
  if (f.length !== 5 || f.slice(2).some((x) => x !== '*')) return undefined;
  const [minute = '', hour = ''] = f;
  const step = (x: string) => (x === '*' ? 1 : /^\*\/([1-9]\d*)$/.exec(x)?.[1]);
  const minuteStep = step(minute);
  if (hour === '*' && minuteStep !== undefined) return Number(minuteStep) * 60;
  const tokens = minute.split(',');
  if (tokens.some((m) => !/^\d{1,2}$/.test(m) || Number(m) > 59)) return undefined;
  const minutes = tokens.map(Number);
  const hourStep = step(hour);
  if (minutes.length === 1 && hourStep !== undefined) return Number(hourStep) * 3600;
  if (minutes.length === 1 && /^\d+$/.test(hour) && Number(hour) < 24) return 86_400;
  if (hour !== '*') return undefined;
  // The longest gap between listed minutes, across the hour too.
  const sorted = [...new Set(minutes)].sort((a, b) => a - b);
  const gaps = sorted.map((m, i) => ((sorted[i + 1] ?? (sorted[0] as number) + 60) - m) * 60);
  return Math.max(...gaps);
}

/**
 * Monitoring refuses an absence shorter than 120 s or not in whole minutes (MetricAbsence.duration,
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#metricabsence);
 * the deploy also keeps it within a day, longer than any sweep schedule it accepts needs.
 */
export function absenceSec(intervalSec: number, missed: number): number {
  const wanted = Math.ceil((intervalSec * missed) / 60) * 60;
  return Math.min(86_400, Math.max(120, wanted));
}

export const heartbeatPolicyName = (c: ResolvedConfig) => `${c.deployment} healthSweep stopped`;

/**
 * The alert when healthSweep has not completed a sweep for `alerting.sweepMissedIntervals` of its
 * scheduler's intervals: no `function_heartbeat{function="healthSweep"}` point for that long. It
 * notifies the operator's channels only (never scalingAlerts' topic). A series Monitoring never saw
 * cannot go absent: the alert arms after the first completed sweep.
 */
export function heartbeatPolicy(c: ResolvedConfig) {
  const interval = scheduleIntervalSec(c.healthSweepSchedule);
  if (interval === undefined)
    throw new Error(`healthSweepSchedule ${c.healthSweepSchedule}: unsupported form`);
  const missed = c.alerting.sweepMissedIntervals;
  const duration = absenceSec(interval, missed);
  return {
    displayName: heartbeatPolicyName(c),
    combiner: 'OR',
    conditions: [
      {
        displayName: `no completed healthSweep for ${duration / 60} min (${missed} × ${interval / 60} min)`,
        conditionAbsent: {
          filter: `metric.type = "${customMetric('function_heartbeat')}" AND resource.type = "global" AND metric.label."function" = "healthSweep"`,
          aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MAX' }],
          duration: `${duration}s`,
          trigger: { count: 1 },
        },
      },
    ],
    documentation: {
      content:
        `healthSweep of deployment ${c.deployment} has completed no sweep for ${duration / 60} minutes. ` +
        'Check the function’s logs, its Cloud Scheduler job and its dead-letter hold subscription.',
      mimeType: 'text/markdown',
    },
    alertStrategy: { autoClose: '1800s' },
    notificationChannels: c.alerting.notificationChannels,
    userLabels: { app: APP_LABEL, deployment: c.deployment },
  };
}
