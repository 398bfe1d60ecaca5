import { createHash } from 'node:crypto';
import { z } from 'zod';
import { kvPrefixes } from '../contract';
import { incidentIdSchema, type Incident } from './notification';
import {
  autoscalerKey,
  changeSchema,
  metricTypeSchema,
  type AutoscalerRef,
  type Change,
  type RuleFile,
  type Target,
  type Tier,
} from './rules';

/**
 * Pure planning of scalingAlerts: from an incident, the matched rule, one autoscaler as Compute
 * returns it and this function's record of that autoscaler in KV, to the record to write, the
 * `autoscalers.patch` body (a JSON merge patch) and the metric points to publish.
 *
 * A change is a lease. Floors are raised with one one-time scaling schedule per incident: GCE
 * applies the greatest `minRequiredReplicas` of the schedules in force and ends each one after its
 * `durationSec` by itself, so a lost `closed` or a dead function still lets it go. Other changes
 * (utilization targets, scaleInControl, mode) record the original value in the autoscaler's KV
 * record and are reverted when no lease holds them any more (on `closed`, or by the sweep when the
 * lease expires). Several open incidents: per field the strongest lease holds ("scale-up wins").
 *
 * Field semantics from the Compute v1 reference (Autoscaler, AutoscalingPolicy,
 * AutoscalingPolicyScalingSchedule; https://cloud.google.com/compute/docs/reference/rest/v1/autoscalers):
 * `schedule` is extended cron with an optional year (a single start when the year is set),
 * interpreted in `timeZone` (IANA); `durationSec` ≥ 300; overlapping schedules apply the greatest
 * `minRequiredReplicas`; at most 128 schedules; `patch` follows JSON merge patch rules, so `null`
 * removes a schedule or a field.
 */

// ---- Compute v1 Autoscaler, the parts read here (external input: validated) ----

const fixedOrPercentSchema = z.looseObject({
  fixed: z.number().int().nullish(),
  percent: z.number().int().nullish(),
});
const scaleInControlSchema = z.looseObject({
  maxScaledInReplicas: fixedOrPercentSchema.nullish(),
  timeWindowSec: z.number().int().nullish(),
});
export const scalingScheduleSchema = z.looseObject({
  minRequiredReplicas: z.number().int().min(0).nullish(),
  schedule: z.string().nullish(),
  timeZone: z.string().nullish(),
  durationSec: z.number().int().nullish(),
  disabled: z.boolean().nullish(),
  description: z.string().nullish(),
});
const customMetricSchema = z.looseObject({
  metric: z.string().nullish(),
  filter: z.string().nullish(),
  utilizationTarget: z.number().nullish(),
  utilizationTargetType: z.string().nullish(),
  singleInstanceAssignment: z.number().nullish(),
});
export const autoscalingPolicySchema = z.looseObject({
  minNumReplicas: z.number().int().min(0).nullish(),
  maxNumReplicas: z.number().int().min(0).nullish(),
  cpuUtilization: z.looseObject({ utilizationTarget: z.number().nullish() }).nullish(),
  loadBalancingUtilization: z.looseObject({ utilizationTarget: z.number().nullish() }).nullish(),
  customMetricUtilizations: z.array(customMetricSchema).nullish(),
  scaleInControl: scaleInControlSchema.nullish(),
  mode: z.string().nullish(),
  scalingSchedules: z.record(z.string(), scalingScheduleSchema).nullish(),
});
export const autoscalerSchema = z.looseObject({
  name: z.string().min(1),
  autoscalingPolicy: autoscalingPolicySchema.default({}),
});
export type AutoscalingPolicy = z.infer<typeof autoscalingPolicySchema>;
export type Autoscaler = z.infer<typeof autoscalerSchema>;
export type ScalingSchedule = z.infer<typeof scalingScheduleSchema>;

// ---- This function's record of one autoscaler (KV, written by CAS) ----

export const leaseSchema = z.object({
  incidentId: incidentIdSchema,
  rule: z.string(),
  tier: z.string(),
  change: changeSchema,
  /** When the lease was granted or last renewed (ms). */
  grantedAt: z.number(),
  expiresAt: z.number(),
  /** 0 when first granted, +1 per renewal or re-grant: part of the request id. */
  generation: z.number().int().min(0),
});
export type Lease = z.infer<typeof leaseSchema>;

export const autoscalerStateSchema = z.object({
  leases: z.record(incidentIdSchema, leaseSchema).default({}),
  /** Incidents seen closed (id → close time, ms), so an `open` delivered late changes nothing. */
  closed: z.record(incidentIdSchema, z.number()).default({}),
  /** Values before this function first overrode them; `null`: the field was absent. */
  original: z
    .object({
      cpuTarget: z.number().optional(),
      lbTarget: z.number().optional(),
      customTargets: z.record(metricTypeSchema, z.number()).optional(),
      scaleInControl: scaleInControlSchema.nullable().optional(),
      mode: z.string().nullable().optional(),
    })
    .default({}),
  /** Times (ms) of the changes applied in the last hour: cooldown and hourly limit. */
  changes: z.array(z.number()).default([]),
  /**
   * The last request that counted as a change, and the time it counts at: its redelivery (after a
   * transient failure) sends it again instead of being held back by its own cooldown.
   */
  lastRequest: z.object({ requestId: z.string().max(64), at: z.number() }).optional(),
});
export type AutoscalerState = z.infer<typeof autoscalerStateSchema>;

export const emptyState = (): AutoscalerState => ({ leases: {}, closed: {}, original: {}, changes: [] });

/** KV key of an autoscaler's record, under the orchestrator's prefix (ending in `/`). */
export const stateKey = (kvPrefix: string, ref: AutoscalerRef): string =>
  `${kvPrefixes(kvPrefix).scalingAlertsAutoscalers}${autoscalerKey(ref)}`;

// ---- Plans ----

export type PolicyPatch = {
  mode?: string;
  cpuUtilization?: { utilizationTarget: number };
  loadBalancingUtilization?: { utilizationTarget: number };
  customMetricUtilizations?: z.infer<typeof customMetricSchema>[];
  scaleInControl?: Record<string, unknown> | null;
  scalingSchedules?: Record<string, ScalingSchedule | null>;
};

export interface MetricPoint {
  type: string;
  labels: Record<string, string>;
  value: number;
}

export type Decision = 'apply' | 'refuse' | 'noop';

export interface Plan {
  autoscaler: string;
  tier: string;
  incidentId?: string;
  decision: Decision;
  reason: string;
  /** Escalations a guardrail held back this time (cooldown, hourly limit): a later renewal or sweep applies them. */
  withheld: string[];
  /** Leases the tier or the autoscaler does not allow. */
  refused: string[];
  /** Body of `autoscalers.patch` (JSON merge patch); absent when nothing changes. */
  patch?: { name: string; autoscalingPolicy: PolicyPatch };
  /** UUID for the patch: the same delivery always sends the same id, so Compute acts once. */
  requestId?: string;
  /** The record to write (CAS) before sending the patch; absent when it does not change. */
  state?: AutoscalerState;
  metrics: MetricPoint[];
}

export interface PlanContext {
  rules: RuleFile;
  tierName: string;
  tier: Tier;
  ref: AutoscalerRef;
  autoscaler: Autoscaler;
  /** Labels of the autoscaler's group (e.g. from its instance template), for ownership by label. */
  ownerLabels?: Record<string, string>;
  state: AutoscalerState | null;
  now: number;
  /** How long closed incidents are remembered (default 7 days, Pub/Sub's longest retention). */
  tombstoneRetentionMs?: number;
}

export const metricTypes = {
  decision: 'custom.googleapis.com/ilb/scaling_alerts/decisions',
  floor: 'custom.googleapis.com/ilb/scaling_alerts/effective_floor',
  leases: 'custom.googleapis.com/ilb/scaling_alerts/active_leases',
} as const;

const hourMs = 3600_000;
const defaultTombstoneRetentionMs = 7 * 24 * hourMs;
const scheduleTimeZone = 'Etc/UTC';
/** GCE allows at most 128 scaling schedules per autoscaler. */
const maxSchedules = 128;

// ---- Helpers ----

/** A name-based (v5-style, SHA-1) UUID: Compute wants `requestId` to be a UUID. */
export function requestIdFor(name: string): string {
  // Namespace: the RFC 4122 URL namespace, so ids are stable across deployments of this code.
  const ns = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

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

/** RFC 7396 JSON merge patch, for tests and emulators: what Compute does with a patch body. */
export function applyMergePatch<T>(target: T, patch: unknown): T {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    else base[k] = applyMergePatch(base[k], v);
  }
  return base as T;
}

export function ownsAutoscaler(
  name: string,
  ownership: RuleFile['ownership'],
  labels: Record<string, string> = {},
): boolean {
  if (ownership.namePrefixes.some((p) => name.startsWith(p))) return true;
  const label = ownership.label;
  return (
    label !== undefined &&
    Object.prototype.hasOwnProperty.call(labels, label.key) &&
    labels[label.key] === label.value
  );
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** The floor a raise-min lease asks for, clamped by the tier and the autoscaler. */
export function floorFor(
  change: Extract<Change, { type: 'raise-min' }>,
  policy: AutoscalingPolicy,
  tier: Tier,
): number {
  const base = policy.minNumReplicas ?? 0;
  const max = policy.maxNumReplicas ?? tier.ceiling;
  const wanted = change.by !== undefined ? base + change.by : (change.to ?? base);
  return Math.min(Math.max(wanted, tier.floor), base + tier.maxStep, tier.ceiling, max);
}

type TargetKind = 'cpu' | 'lb' | 'custom';

function currentTarget(policy: AutoscalingPolicy, kind: TargetKind, metric?: string): number | undefined {
  if (kind === 'cpu') return policy.cpuUtilization?.utilizationTarget ?? undefined;
  if (kind === 'lb') return policy.loadBalancingUtilization?.utilizationTarget ?? undefined;
  return policy.customMetricUtilizations?.find((m) => m.metric === metric)?.utilizationTarget ?? undefined;
}

function targetRange(tier: Tier, kind: TargetKind, metric?: string) {
  const t = tier.targets;
  if (!t) return undefined;
  const range =
    kind === 'cpu'
      ? t.cpu
      : kind === 'lb'
        ? t.loadBalancing
        : metric !== undefined &&
            t.customMetrics &&
            Object.prototype.hasOwnProperty.call(t.customMetrics, metric)
          ? t.customMetrics[metric]
          : undefined;
  return range ? { ...range, step: t.maxRelativeStep } : undefined;
}

/** A lower target means more instances: a lease only lowers it, within the tier's range and step. */
function clampTarget(wanted: number, original: number, range: { min: number; max: number; step: number }) {
  const t = Math.max(Math.min(clamp(wanted, range.min, range.max), original), original * (1 - range.step));
  return round(Math.min(t, original));
}

/**
 * Why a change cannot be leased on this autoscaler, or null. Checked when an incident opens (no
 * lease is recorded for a change that would do nothing or is not allowed) and again on every plan.
 */
export function inadmissible(change: Change, policy: AutoscalingPolicy, tier: Tier): string | null {
  switch (change.type) {
    case 'raise-min':
      return floorFor(change, policy, tier) > (policy.minNumReplicas ?? 0)
        ? null
        : 'the floor is already at or above what the rule allows';
    case 'cpu-target':
    case 'lb-target':
    case 'custom-metric-target': {
      const kind: TargetKind =
        change.type === 'cpu-target' ? 'cpu' : change.type === 'lb-target' ? 'lb' : 'custom';
      const metric = change.type === 'custom-metric-target' ? change.metric : undefined;
      if (!targetRange(tier, kind, metric))
        return `the tier allows no ${change.type} change${metric ? ` for ${metric}` : ''}`;
      if (currentTarget(policy, kind, metric) === undefined)
        return `the autoscaler does not scale on ${metric ?? (kind === 'cpu' ? 'CPU' : 'load balancing')}`;
      return null;
    }
    case 'scale-in-control':
      return tier.scaleIn ? null : 'the tier allows no scaleInControl change';
    case 'mode':
      if (!tier.allowModeChange) return 'the tier allows no mode change';
      return policy.mode === 'OFF' ? 'the autoscaler is OFF: an operator turned it off' : null;
  }
}

// ---- Originals read back from KV: clamped, since the record is not to be trusted blindly ----

const restorableModes = new Set(['ON', 'ONLY_SCALE_OUT', 'ONLY_UP']);

/**
 * A recorded original target, clamped: a lease only ever lowered a target, by at most the tier's
 * relative step, so the original lies between the target in force and that divided by (1 - step);
 * CPU and load-balancing targets are at most 1. A forged tiny or huge original cannot be restored.
 */
export function saneOriginal(recorded: number, cur: number, kind: TargetKind, step: number): number {
  const hi = Math.min(step < 1 ? cur / (1 - step) : Infinity, kind === 'custom' ? Infinity : 1);
  return round(clamp(recorded, cur, Math.max(cur, hi)));
}

/** A recorded scaleInControl within what Compute accepts (fixed ≥ 0, percent 0-100, window ≤ 3600 s). */
function saneScaleIn(o: NonNullable<AutoscalerState['original']['scaleInControl']> | null): typeof o {
  if (!o) return null;
  const int = (v: number | null | undefined, lo: number, hi: number) =>
    v === null || v === undefined ? v : clamp(Math.round(v), lo, hi);
  return {
    maxScaledInReplicas: o.maxScaledInReplicas && {
      fixed: int(o.maxScaledInReplicas.fixed, 0, 1000),
      percent: int(o.maxScaledInReplicas.percent, 0, 100),
    },
    timeWindowSec: int(o.timeWindowSec, 0, 3600),
  };
}

// ---- Reconcile: the policy the active leases ask for, against the current one ----

interface Reconciled {
  /** When the change counts (cooldown, hourly limit); undefined when nothing got stronger or weaker. */
  counted?: number;
  patch: PolicyPatch;
  state: AutoscalerState;
  withheld: string[];
  refused: string[];
  escalated: boolean;
  reverted: boolean;
  renewed: boolean;
}

function reconcile(ctx: PlanContext, state: AutoscalerState): Reconciled {
  const { tier, now } = ctx;
  const policy = ctx.autoscaler.autoscalingPolicy;
  const prefix = ctx.rules.schedulePrefix;
  const patch: PolicyPatch = {};
  const withheld: string[] = [];
  const refused: string[] = [];
  let escalated = false;
  let reverted = false;
  let renewed = false;

  const leases: Record<string, Lease> = {};
  for (const [id, l] of Object.entries(state.leases)) if (l.expiresAt > now) leases[id] = l;
  const original = { ...state.original };
  const recent = state.changes.filter((t) => t > now - hourMs && t <= now);
  const last = recent.length ? Math.max(...recent) : undefined;
  const gate =
    last !== undefined && now - last < tier.cooldownSec * 1000
      ? `cooldown: last change ${Math.round((now - last) / 1000)}s ago, cooldown ${tier.cooldownSec}s`
      : recent.length >= tier.maxChangesPerHour
        ? `hourly limit: ${recent.length} changes in the last hour, at most ${tier.maxChangesPerHour}`
        : null;
  const escalate = (what: string, apply: () => void) => {
    if (gate) {
      withheld.push(`${what} (${gate})`);
      return;
    }
    apply();
    escalated = true;
  };

  const active = Object.values(leases).sort((a, b) => (a.incidentId < b.incidentId ? -1 : 1));
  const admissible = active.filter((l) => {
    const why = inadmissible(l.change, policy, tier);
    if (why) refused.push(`${l.incidentId}: ${why}`);
    return why === null;
  });
  const of = <K extends Change['type']>(type: K) =>
    admissible.filter((l): l is Lease & { change: Extract<Change, { type: K }> } => l.change.type === type);

  // Floors: one schedule per lease; ours are recognised by the prefix, others are never touched.
  const schedules: Record<string, ScalingSchedule | null> = {};
  const current = policy.scalingSchedules ?? {};
  const desired = new Map<string, { s: ScalingSchedule; incidentId: string }>();
  for (const l of of('raise-min')) {
    const s = leaseSchedule(l, floorFor(l.change, policy, tier));
    desired.set(scheduleName(prefix, l.incidentId), { s, incidentId: l.incidentId });
  }
  const stale = Object.keys(current).filter((name) => name.startsWith(prefix) && !desired.has(name));
  for (const name of stale) {
    schedules[name] = null;
    reverted = true;
  }
  let count = Object.keys(current).length - stale.length;
  for (const [name, { s, incidentId }] of desired) {
    const cur = Object.prototype.hasOwnProperty.call(current, name) ? current[name] : undefined;
    const want = s.minRequiredReplicas ?? 0;
    if (!cur && count >= maxSchedules) {
      refused.push(
        `${incidentId}: the autoscaler already has ${maxSchedules} scaling schedules, GCE's limit`,
      );
    } else if (!cur || cur.disabled || (cur.minRequiredReplicas ?? 0) < want) {
      escalate(`schedule ${name} (floor ${want})`, () => {
        schedules[name] = s;
        if (!cur) count++;
      });
    } else if ((cur.minRequiredReplicas ?? 0) > want) {
      schedules[name] = s;
      reverted = true;
    } else if (
      cur.schedule !== s.schedule ||
      cur.durationSec !== s.durationSec ||
      cur.timeZone !== s.timeZone
    ) {
      schedules[name] = s;
      renewed = true;
    }
  }
  if (Object.keys(schedules).length) patch.scalingSchedules = schedules;

  // Utilization targets: the lowest asked for holds; the original comes back when none is left.
  const targetField = (
    kind: TargetKind,
    wanted: number[],
    recorded: number | undefined,
    set: (v: number) => void,
    record: (v: number | undefined) => void,
    label: string,
  ) => {
    const cur = currentTarget(policy, kind, label);
    const range = targetRange(tier, kind, label);
    if (wanted.length && cur !== undefined) {
      if (!range) return;
      const orig = recorded === undefined ? cur : saneOriginal(recorded, cur, kind, range.step);
      const want = Math.min(...wanted.map((w) => clampTarget(w, orig, range)));
      if (want < cur) {
        escalate(`${kind === 'custom' ? label : kind} target ${want}`, () => {
          set(want);
          record(orig);
        });
      } else if (want > cur) {
        set(want);
        reverted = true;
        if (want === orig) record(undefined);
      } else if (want !== orig) {
        record(orig);
      } else {
        record(undefined);
      }
    } else if (recorded !== undefined) {
      // A signal the autoscaler no longer uses is not brought back by a restore.
      const back = cur === undefined ? undefined : saneOriginal(recorded, cur, kind, range?.step ?? 1);
      if (back !== undefined && cur !== back) {
        set(back);
        reverted = true;
      }
      record(undefined);
    }
  };
  targetField(
    'cpu',
    of('cpu-target').map((l) => l.change.target),
    original.cpuTarget,
    (v) => (patch.cpuUtilization = { utilizationTarget: v }),
    (v) => (original.cpuTarget = v),
    'cpu',
  );
  targetField(
    'lb',
    of('lb-target').map((l) => l.change.target),
    original.lbTarget,
    (v) => (patch.loadBalancingUtilization = { utilizationTarget: v }),
    (v) => (original.lbTarget = v),
    'lb',
  );
  const customLeases = of('custom-metric-target');
  const metrics = new Set([
    ...customLeases.map((l) => l.change.metric),
    ...Object.keys(original.customTargets ?? {}),
  ]);
  const customTargets: Record<string, number> = { ...(original.customTargets ?? {}) };
  const customSet: Record<string, number> = {};
  for (const metric of [...metrics].sort()) {
    targetField(
      'custom',
      customLeases.filter((l) => l.change.metric === metric).map((l) => l.change.target),
      Object.prototype.hasOwnProperty.call(customTargets, metric) ? customTargets[metric] : undefined,
      (v) => (customSet[metric] = v),
      (v) => {
        if (v === undefined) delete customTargets[metric];
        else customTargets[metric] = v;
      },
      metric,
    );
  }
  original.customTargets = Object.keys(customTargets).length ? customTargets : undefined;
  if (Object.keys(customSet).length) {
    // Merge patch replaces arrays whole: send every entry, with ours changed.
    patch.customMetricUtilizations = (policy.customMetricUtilizations ?? []).map((m) =>
      m.metric != null && Object.prototype.hasOwnProperty.call(customSet, m.metric)
        ? { ...m, utilizationTarget: customSet[m.metric] }
        : m,
    );
  }

  // scaleInControl: the tightest holds (fewest replicas removed, over the longest window).
  const scaleInLeases = of('scale-in-control');
  const curScaleIn = policy.scaleInControl ?? null;
  if (scaleInLeases.length && tier.scaleIn) {
    // Never looser than the operator's own setting.
    const orig = original.scaleInControl !== undefined ? original.scaleInControl : curScaleIn;
    const fixed = Math.min(
      Math.max(tier.scaleIn.minFixed, Math.min(...scaleInLeases.map((l) => l.change.maxScaledInReplicas))),
      orig?.maxScaledInReplicas?.fixed ?? Infinity,
    );
    const window = Math.max(
      Math.min(tier.scaleIn.maxTimeWindowSec, Math.max(...scaleInLeases.map((l) => l.change.timeWindowSec))),
      orig?.timeWindowSec ?? 0,
    );
    const curFixed = curScaleIn?.maxScaledInReplicas?.fixed ?? undefined;
    const curPercent = curScaleIn?.maxScaledInReplicas?.percent ?? undefined;
    const curWindow = curScaleIn?.timeWindowSec ?? undefined;
    const same = curFixed === fixed && curPercent === undefined && curWindow === window;
    if (!same) {
      const body = {
        maxScaledInReplicas: { fixed, ...(curPercent !== undefined ? { percent: null } : {}) },
        timeWindowSec: window,
      };
      const tighter =
        curFixed === undefined || fixed < curFixed || curWindow === undefined || window > curWindow;
      const first = original.scaleInControl === undefined;
      const apply = () => {
        patch.scaleInControl = body;
        if (first) original.scaleInControl = curScaleIn;
      };
      if (tighter) escalate(`scaleInControl fixed ${fixed} over ${window}s`, apply);
      else {
        apply();
        reverted = true;
      }
    }
  } else if (original.scaleInControl !== undefined) {
    const o = saneScaleIn(original.scaleInControl);
    patch.scaleInControl =
      o === null
        ? null
        : {
            maxScaledInReplicas: {
              fixed: o.maxScaledInReplicas?.fixed ?? null,
              percent: o.maxScaledInReplicas?.percent ?? null,
            },
            timeWindowSec: o.timeWindowSec ?? null,
          };
    original.scaleInControl = undefined;
    reverted = true;
  }

  // mode: ONLY_SCALE_OUT while a lease holds it.
  const curMode = policy.mode ?? 'ON';
  if (of('mode').length) {
    if (curMode !== 'ONLY_SCALE_OUT' && curMode !== 'ONLY_UP') {
      const first = original.mode === undefined;
      escalate('mode ONLY_SCALE_OUT', () => {
        patch.mode = 'ONLY_SCALE_OUT';
        if (first) original.mode = policy.mode ?? null;
      });
    }
  } else if (original.mode !== undefined) {
    // Never OFF (a lease is never taken on an OFF autoscaler) nor anything unknown.
    const back = restorableModes.has(original.mode ?? 'ON') ? (original.mode ?? 'ON') : 'ON';
    if (curMode !== back) {
      patch.mode = back;
      reverted = true;
    }
    original.mode = undefined;
  }

  // Something got stronger or weaker (not a mere renewal): counts for cooldown and the hourly limit.
  const changed = escalated || reverted;
  const cleanOriginal = Object.fromEntries(
    Object.entries(original).filter(([, v]) => v !== undefined),
  ) as AutoscalerState['original'];
  return {
    counted: changed ? now : undefined,
    patch,
    state: { ...state, leases, original: cleanOriginal, changes: changed ? [...recent, now] : recent },
    withheld,
    refused,
    escalated,
    reverted,
    renewed,
  };
}

// ---- Entry points ----

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function pruneTombstones(state: AutoscalerState, now: number, retentionMs: number): AutoscalerState {
  const closed = Object.fromEntries(Object.entries(state.closed).filter(([, at]) => at > now - retentionMs));
  return { ...state, closed };
}

/** The floor in force once the patch is applied: the base, or our schedules' highest. */
function effectiveFloor(policy: AutoscalingPolicy, patch: PolicyPatch, prefix: string): number {
  const after = applyMergePatch(policy, patch);
  const ours = Object.entries(after.scalingSchedules ?? {})
    .filter(([name, s]) => name.startsWith(prefix) && !s.disabled)
    .map(([, s]) => s.minRequiredReplicas ?? 0);
  return Math.max(after.minNumReplicas ?? 0, ...ours);
}

/** The patch itself is part of the name: one trigger never reuses an id for different content. */
const requestIdOf = (requestName: string, key: string, patch: PolicyPatch) =>
  requestIdFor(`${requestName}|${key}|${JSON.stringify(patch)}`);

/**
 * Reconciles and finishes the plan. A redelivery of the request the record last counted as a
 * change (its first attempt failed transiently after the record was written) plans without that
 * change's cooldown: when that gives the very same request, it is sent again and still counts once,
 * at its first time; anything else stays behind the guardrails as usual.
 */
function settle(
  ctx: PlanContext,
  prev: AutoscalerState,
  state: AutoscalerState,
  requestName: string,
  incidentId: string | undefined,
  fallback: { decision: Decision; reason: string },
): Plan {
  const last = state.lastRequest;
  const at = last ? state.changes.indexOf(last.at) : -1;
  if (last && at >= 0) {
    const without = { ...state, changes: state.changes.filter((_, i) => i !== at) };
    const r = reconcile(ctx, without);
    if (
      Object.keys(r.patch).length &&
      requestIdOf(requestName, autoscalerKey(ctx.ref), r.patch) === last.requestId
    ) {
      const recent = without.changes.filter((t) => t > ctx.now - hourMs && t <= ctx.now);
      const changes = [...recent, last.at].sort((a, b) => a - b);
      return finish(
        ctx,
        prev,
        { ...r, counted: last.at, state: { ...r.state, changes } },
        requestName,
        incidentId,
        fallback,
      );
    }
  }
  return finish(ctx, prev, reconcile(ctx, state), requestName, incidentId, fallback);
}

function finish(
  ctx: PlanContext,
  prev: AutoscalerState,
  r: Reconciled,
  requestName: string,
  incidentId: string | undefined,
  fallback: { decision: Decision; reason: string },
): Plan {
  const key = autoscalerKey(ctx.ref);
  const hasPatch = Object.keys(r.patch).length > 0;
  let decision: Decision;
  let reason: string;
  if (hasPatch) {
    decision = 'apply';
    reason = [r.escalated && 'escalate', r.reverted && 'revert', r.renewed && 'renew']
      .filter(Boolean)
      .join('+');
  } else if (r.withheld.length) {
    decision = 'refuse';
    reason = `withheld: ${r.withheld.join('; ')}`;
  } else if (incidentId !== undefined && r.refused.some((x) => x.startsWith(`${incidentId}: `))) {
    decision = 'refuse';
    reason = `not allowed: ${r.refused.join('; ')}`;
  } else {
    ({ decision, reason } = fallback);
  }
  const labels = { autoscaler: key, tier: ctx.tierName };
  const requestId = hasPatch ? requestIdOf(requestName, key, r.patch) : undefined;
  const state =
    requestId !== undefined && r.counted !== undefined
      ? { ...r.state, lastRequest: { requestId, at: r.counted } }
      : r.state;
  return {
    autoscaler: key,
    tier: ctx.tierName,
    incidentId,
    decision,
    reason,
    withheld: r.withheld,
    refused: r.refused,
    patch: hasPatch ? { name: ctx.autoscaler.name, autoscalingPolicy: r.patch } : undefined,
    requestId,
    state: sameJson(prev, state) ? undefined : state,
    metrics: [
      { type: metricTypes.decision, labels: { ...labels, decision }, value: 1 },
      {
        type: metricTypes.floor,
        labels,
        value: effectiveFloor(ctx.autoscaler.autoscalingPolicy, r.patch, ctx.rules.schedulePrefix),
      },
      { type: metricTypes.leases, labels, value: Object.keys(r.state.leases).length },
    ],
  };
}

function refusal(ctx: PlanContext, incidentId: string | undefined, reason: string): Plan {
  const key = autoscalerKey(ctx.ref);
  return {
    autoscaler: key,
    tier: ctx.tierName,
    incidentId,
    decision: 'refuse',
    reason,
    withheld: [],
    refused: [],
    metrics: [
      {
        type: metricTypes.decision,
        labels: { autoscaler: key, tier: ctx.tierName, decision: 'refuse' },
        value: 1,
      },
    ],
  };
}

/**
 * What one notification means for one autoscaler the matched rule names. `open` grants (or, once
 * half of it has run, renews) the incident's lease; `closed` (cancelled included) ends it and
 * remembers the incident, so a late `open` changes nothing. Then the active leases are reconciled
 * with the current policy within the guardrails.
 */
export function planIncident(incident: Incident, target: Target, ctx: PlanContext): Plan {
  if (!ownsAutoscaler(ctx.autoscaler.name, ctx.rules.ownership, ctx.ownerLabels)) {
    return refusal(
      ctx,
      incident.id,
      'not-owned: the autoscaler is not this deployment’s (name prefix or owner label)',
    );
  }
  const now = ctx.now;
  const prev = ctx.state ?? emptyState();
  let state = pruneTombstones(prev, now, ctx.tombstoneRetentionMs ?? defaultTombstoneRetentionMs);
  const policy = ctx.autoscaler.autoscalingPolicy;
  let fallback: { decision: Decision; reason: string } = { decision: 'noop', reason: 'in-force' };
  // Names the request: the incident, its state and the lease it acts under.
  let trigger = `${incident.id}|${incident.state}`;

  if (incident.state === 'open') {
    if (Object.prototype.hasOwnProperty.call(state.closed, incident.id)) {
      fallback = { decision: 'noop', reason: 'closed-before-open: the incident is already closed' };
      trigger += '|after-close';
    } else {
      const existing = Object.prototype.hasOwnProperty.call(state.leases, incident.id)
        ? state.leases[incident.id]
        : undefined;
      const leaseMs = target.leaseSec * 1000;
      const why = inadmissible(target.change, policy, ctx.tier);
      if (why && !existing) return refusal(ctx, incident.id, `not allowed: ${why}`);
      if (existing && sameJson(existing.change, target.change) && existing.expiresAt - now > leaseMs / 2) {
        trigger += `|${existing.generation}|${existing.grantedAt}`;
        fallback = { decision: 'noop', reason: 'lease-current' };
      } else {
        const generation = existing ? existing.generation + 1 : 0;
        trigger += `|${generation}|${now}`;
        const lease: Lease = {
          incidentId: incident.id,
          rule: target.rule,
          tier: target.tierName,
          change: target.change,
          grantedAt: now,
          expiresAt: now + leaseMs,
          generation,
        };
        state = { ...state, leases: { ...state.leases, [incident.id]: lease } };
      }
    }
  } else {
    const existing = Object.prototype.hasOwnProperty.call(state.leases, incident.id)
      ? state.leases[incident.id]
      : undefined;
    trigger += `|${existing?.generation ?? '-'}`;
    const leases = { ...state.leases };
    delete leases[incident.id];
    const seen = Object.prototype.hasOwnProperty.call(state.closed, incident.id)
      ? state.closed[incident.id]
      : 0;
    const closedAt = Math.max(incident.time, seen ?? 0);
    state = { ...state, leases, closed: { ...state.closed, [incident.id]: closedAt } };
    fallback = { decision: 'noop', reason: existing ? 'closed' : 'closed: no lease was held' };
  }

  return settle(ctx, prev, state, trigger, incident.id, fallback);
}

/**
 * The sweep's pass over one autoscaler: drops expired leases, reverts what they held and applies
 * escalations a guardrail withheld earlier once it allows them.
 */
export function planSweep(ctx: PlanContext): Plan {
  if (!ownsAutoscaler(ctx.autoscaler.name, ctx.rules.ownership, ctx.ownerLabels)) {
    return refusal(
      ctx,
      undefined,
      'not-owned: the autoscaler is not this deployment’s (name prefix or owner label)',
    );
  }
  const prev = ctx.state ?? emptyState();
  const state = pruneTombstones(prev, ctx.now, ctx.tombstoneRetentionMs ?? defaultTombstoneRetentionMs);
  const r = reconcile(ctx, state);
  const expired = Object.keys(prev.leases)
    .filter((id) => !Object.prototype.hasOwnProperty.call(r.state.leases, id))
    .sort();
  return finish(ctx, prev, r, `sweep|${Math.floor(ctx.now / 60_000)}|${expired.join(',')}`, undefined, {
    decision: 'noop',
    reason: expired.length ? `expired: ${expired.join(', ')}` : 'in-force',
  });
}
