import type { AutoscalingPolicy } from '../gcp/autoscaler-schema';
import type { Change, Tier } from './rules';
import type { AutoscalerState } from './state';

/** The tier's limits on each change, and the sanity bounds of values read back from KV. */

export const round = (x: number) => Math.round(x * 1e6) / 1e6;
export const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

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

/**
 * The policy floors are computed from: while a fallback holds floors in minNumReplicas, its recorded
 * original is the base (so a raised minimum is not raised again from itself).
 */
export function floorBasePolicy(
  policy: AutoscalingPolicy,
  original: AutoscalerState['original'],
  tier: Tier,
): AutoscalingPolicy {
  if (original.minNumReplicas === undefined) return policy;
  return { ...policy, minNumReplicas: saneMinimum(original.minNumReplicas, policy, tier) };
}

export type TargetKind = 'cpu' | 'lb' | 'custom';

export function currentTarget(
  policy: AutoscalingPolicy,
  kind: TargetKind,
  metric?: string,
): number | undefined {
  if (kind === 'cpu') return policy.cpuUtilization?.utilizationTarget ?? undefined;
  if (kind === 'lb') return policy.loadBalancingUtilization?.utilizationTarget ?? undefined;
  return policy.customMetricUtilizations?.find((m) => m.metric === metric)?.utilizationTarget ?? undefined;
}

export function targetRange(tier: Tier, kind: TargetKind, metric?: string) {
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
export function clampTarget(
  wanted: number,
  original: number,
  range: { min: number; max: number; step: number },
) {
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

export const restorableModes = new Set(['ON', 'ONLY_SCALE_OUT', 'ONLY_UP']);

/**
 * A recorded original target, clamped: a lease only ever lowered a target, by at most the tier's
 * relative step, so the original lies between the target in force and that divided by (1 - step);
 * CPU and load-balancing targets are at most 1. A forged tiny or huge original cannot be restored.
 */
export function saneOriginal(recorded: number, cur: number, kind: TargetKind, step: number): number {
  const hi = Math.min(step < 1 ? cur / (1 - step) : Infinity, kind === 'custom' ? Infinity : 1);
  return round(clamp(recorded, cur, Math.max(cur, hi)));
}

/**
 * A recorded original minNumReplicas, clamped: a fallback only raised the minimum, by at most the
 * tier's maxStep, so the original lies in [current - maxStep, current].
 */
export function saneMinimum(recorded: number, policy: AutoscalingPolicy, tier: Tier): number {
  const cur = policy.minNumReplicas ?? 0;
  return clamp(Math.round(recorded), Math.max(0, cur - tier.maxStep), cur);
}

/** A recorded scaleInControl within what Compute accepts (fixed ≥ 0, percent 0-100, window ≤ 3600 s). */
export function saneScaleIn(o: NonNullable<AutoscalerState['original']['scaleInControl']> | null): typeof o {
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
