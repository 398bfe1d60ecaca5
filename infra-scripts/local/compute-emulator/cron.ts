/**
 * The cron expressions of autoscaler scaling schedules (AutoscalingPolicyScalingSchedule.schedule in
 * the Compute v1 reference): `minute hour day-of-month month day-of-week [year]`, read in an IANA time
 * zone (UTC if none). Fields take `*`, `?`, numbers, names (JAN, MON), ranges, lists and `/step`;
 * day-of-week 0 and 7 are Sunday; when both day fields are restricted either may match, as in cron.
 * Pure: time comes in.
 */
export interface Cron {
  minute: Set<number>;
  hour: Set<number>;
  dayOfMonth: Set<number>;
  month: Set<number>;
  dayOfWeek: Set<number>;
  year?: Set<number>;
  /** Whether the day fields were restricted (not `*`), for cron's either-day rule. */
  domAny: boolean;
  dowAny: boolean;
}

const months = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const days = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function field(text: string, min: number, max: number, names: string[] = [], nameBase = 0): Set<number> {
  const out = new Set<number>();
  const value = (v: string): number => {
    const byName = names.indexOf(v.toUpperCase());
    const n = byName >= 0 ? byName + nameBase : /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`'${v}' is not in ${min}-${max}`);
    return n;
  };
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`bad step in '${part}'`);
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') [lo, hi] = [min, max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      [lo, hi] = [value(a), value(b)];
      if (lo > hi) throw new Error(`empty range '${range}'`);
    } else {
      lo = value(range);
      hi = stepText === undefined ? lo : max;
    }
    for (let n = lo; n <= hi; n += step) out.add(n);
  }
  return out;
}

/** Parses a schedule; throws with a readable reason if it is not a valid expression. */
export function parseCron(expr: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length < 5 || parts.length > 6) throw new Error('expected 5 fields, or 6 with a year');
  const [mi, h, dom, mon, dow, year] = parts as [string, string, string, string, string, string?];
  const dayOfWeek = field(dow, 0, 7, days);
  if (dayOfWeek.has(7)) dayOfWeek.add(0);
  return {
    minute: field(mi, 0, 59),
    hour: field(h, 0, 23),
    dayOfMonth: field(dom, 1, 31),
    month: field(mon, 1, 12, months, 1),
    dayOfWeek,
    year: year === undefined ? undefined : field(year, 1970, 2199),
    domAny: dom === '*' || dom === '?',
    dowAny: dow === '*' || dow === '?',
  };
}

/** Whether `timeZone` is a zone name the tz database knows. */
export function validTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function localTime(at: number, timeZone: string): LocalTime {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const { type, value } of f.formatToParts(new Date(at))) p[type] = value;
  return {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour),
    minute: Number(p.minute),
    weekday: days.indexOf((p.weekday ?? '').toUpperCase()),
  };
}

/** Whether the minute that contains `at` is a start time of the schedule. */
export function cronMatches(cron: Cron, at: number, timeZone = 'UTC'): boolean {
  const t = localTime(at, timeZone);
  if (!cron.minute.has(t.minute) || !cron.hour.has(t.hour) || !cron.month.has(t.month)) return false;
  if (cron.year && !cron.year.has(t.year)) return false;
  const dom = cron.dayOfMonth.has(t.day);
  const dow = cron.dayOfWeek.has(t.weekday);
  if (cron.domAny || cron.dowAny) return dom && dow;
  return dom || dow;
}

const minuteMs = 60_000;
/** How far back a start is searched for; longer schedules count as active for this long at most. */
export const maxLookbackMs = 7 * 24 * 3600 * 1000;

/**
 * The latest start of the schedule within `durationSec` before `now` (so the schedule is active at
 * `now`), or undefined if it is not active.
 */
export function activeSince(
  cron: Cron,
  durationSec: number,
  now: number,
  timeZone = 'UTC',
): number | undefined {
  const window = Math.min(durationSec * 1000, maxLookbackMs);
  for (let t = now - (now % minuteMs); now - t < window; t -= minuteMs) {
    if (cronMatches(cron, t, timeZone)) return t;
  }
  return undefined;
}
