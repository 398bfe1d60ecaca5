import { createHash } from 'node:crypto';
import type { Autoscaler, AutoscalerPatch, AutoscalingPolicy, PolicyPatch } from '../gcp/autoscaler-schema';
import { applyMergePatch } from '../gcp/merge-patch';
import { customMetric, type MetricPoint } from '../gcp/monitoring';
import type { Decision } from '../outcome';
import type { Incident } from './notification';
import { hourMs, reconcile, type ReconcileInput, type Reconciled } from './reconcile';
import {
  autoscalerKey,
  maxLifetimeMs,
  type AutoscalerRef,
  type RuleFile,
  type Target,
  type Tier,
} from './rules';
import { boundRecord, emptyState, recordBounds, type AutoscalerState, type Lease } from './state';
import { floorBasePolicy, floorFor, inadmissible } from './guardrails';
import { unreachableFloor, unreachablePoint, type Growth } from './growth';

/**
 * Pure planning of scalingAlerts: from an incident, the matched rule, one autoscaler as Compute
 * returns it and this function's record of that autoscaler in KV, to the record to write, the
 * `autoscalers.patch` body (a JSON merge patch) and the metric points to publish.
 *
 * A change is a lease. Floors are raised with one one-time scaling schedule per incident
 * (schedule.ts), or, when GCE does not report such a schedule ACTIVE, by raising minNumReplicas with
 * its original recorded (floors.ts). Other changes (utilization targets, scaleInControl, mode) record the original
 * value in the autoscaler's KV record and are reverted when no lease holds them any more (on
 * `closed`, or by the sweep when the lease expires). Several open incidents: per field the
 * strongest lease holds ("scale-up wins"; reconcile.ts).
 */

/** What a plan decides: change the autoscaler, refuse (a guardrail), or nothing to do. */
export type PlanDecision = Extract<Decision, 'applied' | 'refused' | 'noop'>;

export interface Plan {
  autoscaler: string;
  tier: string;
  incidentId?: string;
  /** `applied` once the patch is sent; a dry run reports it as `planned`. */
  decision: PlanDecision;
  reason: string;
  /** Escalations a guardrail held back this time (cooldown, hourly limit): a later renewal or sweep applies them. */
  withheld: string[];
  /** Leases the tier or the autoscaler does not allow. */
  refused: string[];
  /** Body of `autoscalers.patch` (JSON merge patch); absent when nothing changes. */
  patch?: AutoscalerPatch;
  /** UUID for the patch: the same delivery always sends the same id, so Compute acts once. */
  requestId?: string;
  /** The record to write (CAS) before sending the patch; absent when it does not change. */
  state?: AutoscalerState;
  /** Scaling schedules the patch writes, to be read back as ACTIVE once it is applied. */
  verify?: string[];
  metrics: MetricPoint[];
}

export interface PlanContext extends ReconcileInput {
  tierName: string;
  tier: Tier;
  ref: AutoscalerRef;
  autoscaler: Autoscaler;
  /** Labels of the autoscaler's group (e.g. from its instance template), for ownership by label. */
  ownerLabels?: Record<string, string>;
  state: AutoscalerState | null;
  /** How long closed incidents are remembered (default 7 days, Pub/Sub's longest retention). */
  tombstoneRetentionMs?: number;
  /** Whether the autoscaler's group can grow (growth.ts); unknown: floors are raised as asked. */
  growth?: Growth;
}

export const metricTypes = {
  /** Labelled with the decision, in the words of shared/outcome.ts. */
  decision: customMetric('scaling_alerts/decisions'),
  floor: customMetric('scaling_alerts/effective_floor'),
  leases: customMetric('scaling_alerts/active_leases'),
} as const;

/** The decision metric of one autoscaler. */
export const decisionPoint = (autoscaler: string, tier: string, decision: Decision): MetricPoint => ({
  type: metricTypes.decision,
  labels: { autoscaler, tier, decision },
  value: 1,
});

const defaultTombstoneRetentionMs = 7 * 24 * hourMs;

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

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

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
  fallback: { decision: PlanDecision; reason: string },
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
  fallback: { decision: PlanDecision; reason: string },
): Plan {
  const key = autoscalerKey(ctx.ref);
  const hasPatch = Object.keys(r.patch).length > 0;
  let decision: PlanDecision;
  let reason: string;
  if (hasPatch) {
    decision = 'applied';
    reason = [
      r.escalated && 'escalate',
      r.reverted && 'revert',
      r.renewed && 'renew',
      r.fallback && 'fallback',
    ]
      .filter(Boolean)
      .join('+');
  } else if (r.withheld.length) {
    decision = 'refused';
    reason = `withheld: ${r.withheld.join('; ')}`;
  } else if (incidentId !== undefined && r.refused.some((x) => x.startsWith(`${incidentId}: `))) {
    decision = 'refused';
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
    ...(hasPatch && r.verify.length ? { verify: r.verify } : {}),
    metrics: [
      decisionPoint(key, ctx.tierName, decision),
      {
        type: metricTypes.floor,
        labels,
        value: effectiveFloor(ctx.autoscaler.autoscalingPolicy, r.patch, ctx.rules.schedulePrefix),
      },
      { type: metricTypes.leases, labels, value: Object.keys(r.state.leases).length },
    ],
  };
}

/** A plan that writes nothing: refused, or (`noop`) nothing to do. */
function refusal(
  ctx: PlanContext,
  incidentId: string | undefined,
  reason: string,
  decision: PlanDecision = 'refused',
): Plan {
  const key = autoscalerKey(ctx.ref);
  return {
    autoscaler: key,
    tier: ctx.tierName,
    incidentId,
    decision,
    reason,
    withheld: [],
    refused: [],
    metrics: [decisionPoint(key, ctx.tierName, decision)],
  };
}

/** GCE's shortest scaling schedule: a lease shorter than this is not granted. */
const minLeaseMs = 300_000;

/**
 * The policy's current run of leases, started now when it had none or was quiet (no open
 * notification) for a longest lease; every open notification of the policy keeps it going.
 */
function runOf(state: AutoscalerState, policy: string, tier: Tier, now: number) {
  const runs = state.runs ?? {};
  const run = Object.prototype.hasOwnProperty.call(runs, policy) ? runs[policy] : undefined;
  const current = run !== undefined && now - run.last <= tier.lease.maxSec * 1000 && run.first <= now;
  return { first: current ? run.first : now, last: now };
}

/**
 * What one notification means for one autoscaler the matched rule names. `open` grants (or, once
 * half of it has run, renews) the incident's lease; `closed` (cancelled included) ends it and
 * remembers the incident, so a late `open` changes nothing. Then the active leases are reconciled
 * with the current policy within the guardrails. The incident is the one its policy confirmed
 * (confirm.ts); `endOnly`: a close whose policy is gone, which may only end that policy's lease.
 * A lease never runs past its policy's run's maximum lifetime (`runOf`, `lease.maxLifetimeSec`).
 */
export function planIncident(
  incident: Incident,
  target: Target,
  ctx: PlanContext,
  options: { endOnly?: boolean } = {},
): Plan {
  if (!ownsAutoscaler(ctx.autoscaler.name, ctx.rules.ownership, ctx.ownerLabels)) {
    return refusal(
      ctx,
      incident.id,
      'not-owned: the autoscaler is not this deployment’s (name prefix or owner label)',
    );
  }
  const now = ctx.now;
  const prev = ctx.state ?? emptyState();
  let state = boundRecord(prev, now, ctx.tombstoneRetentionMs ?? defaultTombstoneRetentionMs);
  const policy = ctx.autoscaler.autoscalingPolicy;
  let fallback: { decision: PlanDecision; reason: string } = { decision: 'noop', reason: 'in-force' };
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
      const base = floorBasePolicy(policy, state.original, ctx.tier);
      const why = inadmissible(target.change, base, ctx.tier);
      if (why && !existing) return refusal(ctx, incident.id, `not allowed: ${why}`);
      const stuck =
        !existing && target.change.type === 'raise-min'
          ? unreachableFloor(floorFor(target.change, base, ctx.tier), ctx.growth)
          : null;
      if (stuck && ctx.growth) {
        const refused = refusal(ctx, incident.id, stuck);
        return { ...refused, metrics: [...refused.metrics, unreachablePoint(ctx.growth)] };
      }
      const policyName = incident.policyId ?? '';
      const run = runOf(state, policyName, ctx.tier, now);
      const end = Math.min(now + leaseMs, run.first + maxLifetimeMs(ctx.tier));
      const runs = { ...(state.runs ?? {}), [policyName]: run };
      if (existing && sameJson(existing.change, target.change) && existing.expiresAt - now > leaseMs / 2) {
        trigger += `|${existing.generation}|${existing.grantedAt}`;
        fallback = { decision: 'noop', reason: 'lease-current' };
      } else if (end - now < minLeaseMs || (existing !== undefined && end <= existing.expiresAt)) {
        // The run is over: every open notification of the policy keeps it so until it is quiet.
        state = { ...state, runs };
        trigger += `|${existing?.generation ?? '-'}|lifetime`;
        const since = Math.round((now - run.first) / 1000);
        fallback = {
          decision: 'refused',
          reason: `lease-lifetime: ${policyName} has held leases for ${since}s, at most ${maxLifetimeMs(ctx.tier) / 1000}s`,
        };
      } else if (!existing && Object.keys(state.leases).length >= recordBounds.leases) {
        return refusal(ctx, incident.id, `too-many-leases: ${recordBounds.leases} leases are held already`);
      } else {
        const generation = existing ? existing.generation + 1 : 0;
        trigger += `|${generation}|${now}`;
        const lease: Lease = {
          incidentId: incident.id,
          rule: target.rule,
          tier: target.tierName,
          change: target.change,
          grantedAt: now,
          expiresAt: end,
          generation,
          ...(incident.policyId !== undefined ? { policy: incident.policyId } : {}),
        };
        state = { ...state, runs, leases: { ...state.leases, [incident.id]: lease } };
      }
    }
  } else {
    const existing = Object.prototype.hasOwnProperty.call(state.leases, incident.id)
      ? state.leases[incident.id]
      : undefined;
    // A close whose policy is gone (deleted or disabled) only ends a lease that policy holds.
    if (options.endOnly && (!existing || existing.policy !== incident.policyId))
      return refusal(ctx, incident.id, 'closed: its policy is gone and holds no lease here', 'noop');
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
  const state = boundRecord(prev, ctx.now, ctx.tombstoneRetentionMs ?? defaultTombstoneRetentionMs);
  const r = reconcile(ctx, state);
  const expired = Object.keys(prev.leases)
    .filter((id) => !Object.prototype.hasOwnProperty.call(r.state.leases, id))
    .sort();
  return finish(ctx, prev, r, `sweep|${Math.floor(ctx.now / 60_000)}|${expired.join(',')}`, undefined, {
    decision: 'noop',
    reason: expired.length ? `expired: ${expired.join(', ')}` : 'in-force',
  });
}
