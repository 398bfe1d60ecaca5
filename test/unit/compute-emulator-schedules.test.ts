import { recommend, scheduleState } from '../../infra-scripts/local/compute-emulator/autoscaling';
import { activeSince, cronMatches, parseCron } from '../../infra-scripts/local/compute-emulator/cron';
import type { AutoscalingPolicy } from '../../infra-scripts/local/compute-emulator/state';

const utc = (iso: string) => Date.parse(iso);

describe('cron expressions of scaling schedules', () => {
  it('matches minutes, hours, ranges, lists, steps and names', () => {
    const weekdayMornings = parseCron('30 8 * * Mon-Fri');
    expect(cronMatches(weekdayMornings, utc('2026-11-27T08:30:45Z'))).toBe(true); // a Friday
    expect(cronMatches(weekdayMornings, utc('2026-11-28T08:30:00Z'))).toBe(false); // Saturday
    expect(cronMatches(weekdayMornings, utc('2026-11-27T08:31:00Z'))).toBe(false);
    const every15 = parseCron('*/15 0-2,22 1 JAN,jul *');
    expect(cronMatches(every15, utc('2026-07-01T22:45:00Z'))).toBe(true);
    expect(cronMatches(every15, utc('2026-07-01T22:46:00Z'))).toBe(false);
    expect(cronMatches(parseCron('0 0 * * 7'), utc('2026-11-29T00:00:00Z'))).toBe(true); // Sunday as 7
  });

  it('either restricted day field may match, as in cron', () => {
    const c = parseCron('0 12 1 * MON');
    expect(cronMatches(c, utc('2026-12-01T12:00:00Z'))).toBe(true); // the 1st, a Tuesday
    expect(cronMatches(c, utc('2026-11-30T12:00:00Z'))).toBe(true); // a Monday
    expect(cronMatches(c, utc('2026-12-02T12:00:00Z'))).toBe(false);
  });

  it('an optional year makes a one-time schedule', () => {
    const once = parseCron('5 23 27 11 * 2026');
    expect(cronMatches(once, utc('2026-11-27T23:05:00Z'))).toBe(true);
    expect(cronMatches(once, utc('2027-11-27T23:05:00Z'))).toBe(false);
  });

  it('reads the expression in its time zone', () => {
    const nineInBerlin = parseCron('0 9 * * *');
    expect(cronMatches(nineInBerlin, utc('2026-11-27T08:00:00Z'), 'Europe/Berlin')).toBe(true);
    expect(cronMatches(nineInBerlin, utc('2026-07-01T07:00:00Z'), 'Europe/Berlin')).toBe(true);
    expect(cronMatches(nineInBerlin, utc('2026-11-27T09:00:00Z'), 'Europe/Berlin')).toBe(false);
  });

  it.each(['* * * *', '60 * * * *', '* 24 * * *', '* * 0 * *', '5-1 * * * *', '*/0 * * * *', 'a b c d e'])(
    'refuses %p',
    (expr) => expect(() => parseCron(expr)).toThrow(),
  );

  it('is active for durationSec from each start, then stops by itself', () => {
    const c = parseCron('0 10 * * *');
    expect(activeSince(c, 300, utc('2026-11-27T09:59:59Z'))).toBeUndefined();
    expect(activeSince(c, 300, utc('2026-11-27T10:00:00Z'))).toBe(utc('2026-11-27T10:00:00Z'));
    expect(activeSince(c, 300, utc('2026-11-27T10:04:59Z'))).toBe(utc('2026-11-27T10:00:00Z'));
    expect(activeSince(c, 300, utc('2026-11-27T10:05:00Z'))).toBeUndefined();
  });
});

describe('scaling schedules in the autoscaler', () => {
  const now = utc('2026-11-27T10:02:00Z');
  const policy = (schedules: AutoscalingPolicy['scalingSchedules']): AutoscalingPolicy => ({
    minNumReplicas: 1,
    maxNumReplicas: 6,
    coolDownPeriodSec: 60,
    mode: 'ON',
    customMetricUtilizations: [],
    scalingSchedules: schedules,
  });

  it('the largest minRequiredReplicas of the active schedules counts; disabled and inactive ones do not', () => {
    const p = policy({
      morning: { minRequiredReplicas: 3, schedule: '0 10 * * *', durationSec: 600 },
      overlap: { minRequiredReplicas: 4, schedule: '1 10 * * *', durationSec: 300 },
      off: { minRequiredReplicas: 6, schedule: '0 10 * * *', durationSec: 600, disabled: true },
      later: { minRequiredReplicas: 5, schedule: '0 11 * * *', durationSec: 600 },
    });
    const s = scheduleState(p, now);
    expect(s.minimum).toBe(4);
    expect(s.status).toEqual({
      morning: { state: 'ACTIVE', lastStartTime: '2026-11-27T10:00:00.000Z' },
      overlap: { state: 'ACTIVE', lastStartTime: '2026-11-27T10:01:00.000Z' },
      off: { state: 'DISABLED' },
      later: { state: 'READY' },
    });
    const input = { policy: p, targetSize: 1, signals: [], history: [], now, stabilizationSec: 600 };
    expect(recommend({ ...input, scheduledMinimum: s.minimum }).recommendedSize).toBe(4);
    expect(recommend({ ...input, scheduledMinimum: 9 }).recommendedSize).toBe(6); // max still caps
    expect(recommend(input).recommendedSize).toBe(1);
  });
});

describe('a start already past when the schedule is written', () => {
  const now = utc('2026-11-27T10:02:30Z');
  const p: AutoscalingPolicy = {
    minNumReplicas: 1,
    maxNumReplicas: 6,
    coolDownPeriodSec: 60,
    mode: 'ON',
    customMetricUtilizations: [],
    scalingSchedules: {
      once: { minRequiredReplicas: 3, schedule: '2 10 27 11 * 2026', durationSec: 600 },
      daily: { minRequiredReplicas: 4, schedule: '2 10 * * *', durationSec: 600 },
      before: { minRequiredReplicas: 5, schedule: '0 10 * * *', durationSec: 600 },
    },
  };
  // `once` and `daily` were written within their start minute, `before` before its start.
  const writtenAt = { once: utc('2026-11-27T10:02:10Z'), daily: now, before: utc('2026-11-27T09:00:00Z') };

  it('counts by default (active), as before', () => {
    const s = scheduleState(p, now, { writtenAt });
    expect(s.minimum).toBe(5);
    expect(s.status.once).toEqual({ state: 'ACTIVE', lastStartTime: '2026-11-27T10:02:00.000Z' });
    expect(scheduleState(p, now, { pastStart: 'active', writtenAt }).status).toEqual(s.status);
  });

  it('never counts with `never`: a one-time schedule is OBSOLETE, a recurring one READY; starts after the write count', () => {
    const s = scheduleState(p, now, { pastStart: 'never', writtenAt });
    expect(s.status).toEqual({
      once: { state: 'OBSOLETE' },
      daily: { state: 'READY' },
      before: { state: 'ACTIVE', lastStartTime: '2026-11-27T10:00:00.000Z' },
    });
    expect(s.minimum).toBe(5);
    // Without a write time (e.g. a policy built elsewhere) the start counts.
    expect(scheduleState(p, now, { pastStart: 'never' }).status.once?.state).toBe('ACTIVE');
  });
});
