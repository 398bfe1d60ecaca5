import { createHash } from 'node:crypto';
import type { ScalingSchedule } from '../gcp/autoscaler-schema';
import type { Lease } from './state';

/**
 * A floor lease is one one-time scaling schedule per incident: GCE applies the greatest
 * `minRequiredReplicas` of the schedules in force and ends each one after its `durationSec` by
 * itself, so a lost `closed` or a dead function still lets it go.
 */

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
 * contains now. (Not yet checked against real GCE: if it ignored a start in the past, the start
 * would have to move to the next minute.)
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
