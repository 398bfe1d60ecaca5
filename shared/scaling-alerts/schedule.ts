import { createHash } from 'node:crypto';
import type { Autoscaler, ScalingSchedule } from '../gcp/autoscaler-schema';
import type { Lease } from './state';

/**
 * A floor lease is one one-time scaling schedule per incident: GCE applies the greatest
 * `minRequiredReplicas` of the schedules in force and ends each one after its `durationSec` by
 * itself, so a lost `closed` or a dead function still lets it go.
 *
 * What Google's reference says, and what it leaves open:
 * - `schedule` holds "the start timestamps of time intervals" in extended cron; with the optional
 *   year it is a single timestamp and the schedule runs once (AutoscalingPolicyScalingSchedule,
 *   https://cloud.google.com/compute/docs/reference/rest/v1/autoscalers).
 * - "A scaling schedule is active from its start time and for its configured duration"
 *   (`gcloud compute instance-groups managed update-autoscaling --help`, `--schedule-duration-sec`,
 *   Cloud SDK 528).
 * - `status.scalingScheduleStatus[<name>]`: `state` ACTIVE ("the current autoscaling recommendation
 *   is influenced by this scaling schedule"), READY (not influenced), DISABLED, OBSOLETE ("will never
 *   become active again"); `lastStartTime` is when it actually became active, `nextStartTime` when it
 *   is planned to (ScalingScheduleStatus in the same reference).
 * - Nothing says whether a one-time schedule written after its start timestamp, within its
 *   duration, becomes active. Ours start in the current minute, already begun when Compute reads
 *   them; so the floor is verified: after the write, `state` must read ACTIVE within
 *   `scheduleCheck.boundMs`, otherwise the floors of that autoscaler are held by raising
 *   `minNumReplicas` instead (floors.ts), with the original recorded and restored.
 */

/** How long a written schedule may take to read ACTIVE, and the pause between reads. */
export interface ScheduleCheck {
  boundMs: number;
  intervalMs: number;
}
export const defaultScheduleCheck: ScheduleCheck = { boundMs: 20_000, intervalMs: 4_000 };

/** Whether GCE reports the schedule ACTIVE on this autoscaler. */
export const scheduleActive = (autoscaler: Autoscaler, name: string): boolean =>
  autoscaler.scalingScheduleStatus?.[name]?.state === 'ACTIVE';

const scheduleTimeZone = 'Etc/UTC';

/** Schedule name of an incident: `<prefix><sanitized id>-<hash>`, a valid name of ≤ 63 characters. */
export function scheduleName(prefix: string, incidentId: string): string {
  const hash = createHash('sha256').update(incidentId).digest('hex').slice(0, 8);
  const room = 63 - prefix.length - hash.length - 1;
  const body = incidentId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, Math.max(room, 0))
    .replace(/-+$/, '');
  return `${prefix}${body ? `${body}-` : ''}${hash}`;
}

/**
 * One-time schedule: cron for the minute `start` (UTC) with its year, so it runs once. The start is
 * the current minute, already begun when Compute reads it: the interval [start, start + duration)
 * contains now. Whether GCE counts such a start is not documented (see above): it is verified.
 */
export function oneTimeCron(start: number): string {
  const d = new Date(start);
  return `${d.getUTCMinutes()} ${d.getUTCHours()} ${d.getUTCDate()} ${d.getUTCMonth() + 1} * ${d.getUTCFullYear()}`;
}

/** The scaling schedule that holds a floor lease until it expires. */
export function leaseSchedule(lease: Lease, minRequiredReplicas: number): ScalingSchedule {
  const start = Math.floor(lease.grantedAt / 60_000) * 60_000;
  return {
    minRequiredReplicas,
    schedule: oneTimeCron(start),
    timeZone: scheduleTimeZone,
    durationSec: Math.max(300, Math.ceil((lease.expiresAt - start) / 1000)),
    description: `gce-ilb-orchestrator lease for incident ${lease.incidentId} (rule ${lease.rule})`,
  };
}
