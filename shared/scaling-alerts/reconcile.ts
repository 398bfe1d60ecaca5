import type { Autoscaler, AutoscalingPolicy, PolicyPatch } from '../gcp/autoscaler-schema';
import { reconcileFloors } from './floors';
import {
  clampTarget,
  currentTarget,
  floorBasePolicy,
  inadmissible,
  restorableModes,
  saneOriginal,
  saneScaleIn,
  targetRange,
  type TargetKind,
} from './guardrails';
import type { Change, RuleFile, Tier } from './rules';
import { defaultScheduleCheck } from './schedule';
import type { AutoscalerState, Lease } from './state';

/**
 * Reconcile: the policy the active leases ask for, against the current one. Per field the strongest
 * lease holds ("scale-up wins"); what no lease holds any more goes back to its recorded original.
 * Escalations pass the tier's cooldown and hourly limit, or are withheld for a later pass.
 */

export const hourMs = 3600_000;

export interface ReconcileInput {
  rules: RuleFile;
  tier: Tier;
  autoscaler: Autoscaler;
  now: number;
  /** Our schedules the caller read back as not ACTIVE after the bound: floors fall back to minNumReplicas. */
  inactiveSchedules?: string[];
  /** How long after its write a schedule must read ACTIVE (default 20 s). */
  scheduleBoundMs?: number;
}

/** What the field passes found, reported with the plan. */
interface Findings {
  withheld: string[];
  refused: string[];
  escalated: boolean;
  reverted: boolean;
  renewed: boolean;
  /** minNumReplicas raised to hold floors whose schedules are not ACTIVE. */
  fallback: boolean;
  /** Schedules the patch writes whose state is to be read back (ACTIVE expected). */
  verify: string[];
}

export interface Reconciled extends Findings {
  /** When the change counts (cooldown, hourly limit); undefined when nothing got stronger or weaker. */
  counted?: number;
  patch: PolicyPatch;
  state: AutoscalerState;
}

/** What the field passes share: the patch and record they build, and what happened. */
export interface Work extends Findings {
  autoscaler: Autoscaler;
  policy: AutoscalingPolicy;
  tier: Tier;
  patch: PolicyPatch;
  original: AutoscalerState['original'];
  /** Applies an escalation unless the cooldown or the hourly limit holds it back. */
  escalate(what: string, apply: () => void): void;
}

type LeasesOf = <K extends Change['type']>(type: K) => (Lease & { change: Extract<Change, { type: K }> })[];

export function reconcile(ctx: ReconcileInput, state: AutoscalerState): Reconciled {
  const { tier, now } = ctx;
  const policy = ctx.autoscaler.autoscalingPolicy;
  const leases: Record<string, Lease> = {};
  for (const [id, l] of Object.entries(state.leases)) if (l.expiresAt > now) leases[id] = l;
  const recent = state.changes.filter((t) => t > now - hourMs && t <= now);
  const last = recent.length ? Math.max(...recent) : undefined;
  const gate =
    last !== undefined && now - last < tier.cooldownSec * 1000
      ? `cooldown: last change ${Math.round((now - last) / 1000)}s ago, cooldown ${tier.cooldownSec}s`
      : recent.length >= tier.maxChangesPerHour
        ? `hourly limit: ${recent.length} changes in the last hour, at most ${tier.maxChangesPerHour}`
        : null;
  const w: Work = {
    autoscaler: ctx.autoscaler,
    policy,
    tier,
    patch: {},
    original: { ...state.original },
    withheld: [],
    refused: [],
    escalated: false,
    reverted: false,
    renewed: false,
    fallback: false,
    verify: [],
    escalate(what, apply) {
      if (gate) {
        w.withheld.push(`${what} (${gate})`);
        return;
      }
      apply();
      w.escalated = true;
    },
  };

  const active = Object.values(leases).sort((a, b) => (a.incidentId < b.incidentId ? -1 : 1));
  // Floors count from the original minimum while a fallback holds them in minNumReplicas.
  const base = floorBasePolicy(policy, state.original, tier);
  const admissible = active.filter((l) => {
    const why = inadmissible(l.change, base, tier);
    if (why) w.refused.push(`${l.incidentId}: ${why}`);
    return why === null;
  });
  const of: LeasesOf = <K extends Change['type']>(type: K) =>
    admissible.filter((l): l is Lease & { change: Extract<Change, { type: K }> } => l.change.type === type);

  reconcileFloors(w, of('raise-min'), {
    prefix: ctx.rules.schedulePrefix,
    base,
    now,
    inactiveSchedules: ctx.inactiveSchedules ?? [],
    boundMs: ctx.scheduleBoundMs ?? defaultScheduleCheck.boundMs,
  });
  reconcileTargets(w, of);
  reconcileScaleIn(w, of('scale-in-control'));
  reconcileMode(w, of('mode').length > 0);

  // Something got stronger or weaker (not a mere renewal): counts for cooldown and the hourly limit.
  const changed = w.escalated || w.reverted;
  const cleanOriginal = Object.fromEntries(
    Object.entries(w.original).filter(([, v]) => v !== undefined),
  ) as AutoscalerState['original'];
  return {
    counted: changed ? now : undefined,
    patch: w.patch,
    state: { ...state, leases, original: cleanOriginal, changes: changed ? [...recent, now] : recent },
    withheld: w.withheld,
    refused: w.refused,
    escalated: w.escalated,
    reverted: w.reverted,
    renewed: w.renewed,
    fallback: w.fallback,
    verify: w.verify,
  };
}

/**
 * One utilization target: the lowest asked for holds; the original comes back when none is left.
 * `set` writes the patch, `record` the original kept in KV (undefined: none).
 */
function reconcileTarget(
  w: Work,
  kind: TargetKind,
  wanted: number[],
  recorded: number | undefined,
  set: (v: number) => void,
  record: (v: number | undefined) => void,
  label: string,
) {
  const cur = currentTarget(w.policy, kind, label);
  const range = targetRange(w.tier, kind, label);
  if (wanted.length && cur !== undefined) {
    if (!range) return;
    const orig = recorded === undefined ? cur : saneOriginal(recorded, cur, kind, range.step);
    const want = Math.min(...wanted.map((x) => clampTarget(x, orig, range)));
    if (want < cur) {
      w.escalate(`${kind === 'custom' ? label : kind} target ${want}`, () => {
        set(want);
        record(orig);
      });
    } else if (want > cur) {
      set(want);
      w.reverted = true;
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
      w.reverted = true;
    }
    record(undefined);
  }
}

/** CPU, load-balancing and custom-metric targets. */
function reconcileTargets(w: Work, of: LeasesOf) {
  const { patch, original } = w;
  reconcileTarget(
    w,
    'cpu',
    of('cpu-target').map((l) => l.change.target),
    original.cpuTarget,
    (v) => (patch.cpuUtilization = { utilizationTarget: v }),
    (v) => (original.cpuTarget = v),
    'cpu',
  );
  reconcileTarget(
    w,
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
    reconcileTarget(
      w,
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
    patch.customMetricUtilizations = (w.policy.customMetricUtilizations ?? []).map((m) =>
      m.metric != null && Object.prototype.hasOwnProperty.call(customSet, m.metric)
        ? { ...m, utilizationTarget: customSet[m.metric] }
        : m,
    );
  }
}

/** scaleInControl: the tightest holds (fewest replicas removed, over the longest window). */
function reconcileScaleIn(
  w: Work,
  leases: (Lease & { change: Extract<Change, { type: 'scale-in-control' }> })[],
) {
  const { patch, original, tier } = w;
  const curScaleIn = w.policy.scaleInControl ?? null;
  if (leases.length && tier.scaleIn) {
    // Never looser than the operator's own setting.
    const orig = original.scaleInControl !== undefined ? original.scaleInControl : curScaleIn;
    const fixed = Math.min(
      Math.max(tier.scaleIn.minFixed, Math.min(...leases.map((l) => l.change.maxScaledInReplicas))),
      orig?.maxScaledInReplicas?.fixed ?? Infinity,
    );
    const window = Math.max(
      Math.min(tier.scaleIn.maxTimeWindowSec, Math.max(...leases.map((l) => l.change.timeWindowSec))),
      orig?.timeWindowSec ?? 0,
    );
    const curFixed = curScaleIn?.maxScaledInReplicas?.fixed ?? undefined;
    const curPercent = curScaleIn?.maxScaledInReplicas?.percent ?? undefined;
    const curWindow = curScaleIn?.timeWindowSec ?? undefined;
    if (curFixed === fixed && curPercent === undefined && curWindow === window) return;
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
    if (tighter) w.escalate(`scaleInControl fixed ${fixed} over ${window}s`, apply);
    else {
      apply();
      w.reverted = true;
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
    w.reverted = true;
  }
}

/** mode: ONLY_SCALE_OUT while a lease holds it. */
function reconcileMode(w: Work, held: boolean) {
  const { patch, original, policy } = w;
  const curMode = policy.mode ?? 'ON';
  if (held) {
    if (curMode !== 'ONLY_SCALE_OUT' && curMode !== 'ONLY_UP') {
      const first = original.mode === undefined;
      w.escalate('mode ONLY_SCALE_OUT', () => {
        patch.mode = 'ONLY_SCALE_OUT';
        if (first) original.mode = policy.mode ?? null;
      });
    }
  } else if (original.mode !== undefined) {
    // Never OFF (a lease is never taken on an OFF autoscaler) nor anything unknown.
    const back = restorableModes.has(original.mode ?? 'ON') ? (original.mode ?? 'ON') : 'ON';
    if (curMode !== back) {
      patch.mode = back;
      w.reverted = true;
    }
    original.mode = undefined;
  }
}
