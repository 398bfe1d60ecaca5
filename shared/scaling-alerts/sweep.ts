import { TransientError } from '../errors';
import type { AutoscalerLocation, AutoscalersPort } from '../gcp/autoscalers';
import type { GroupErrorsApi } from '../gcp/groups';
import type { MetricPoint, MetricsWriter } from '../gcp/monitoring';
import type { Logger } from '../logging';
import type { Decision } from '../outcome';
import { actOnAutoscaler } from './act';
import { creationErrorPoints, readGrowth } from './growth';
import { planSweep } from './plan';
import { autoscalerKey, type RuleFile } from './rules';
import type { ScheduleCheck } from './schedule';
import { stateKey, type StateStore } from './state';

export interface LeaseSweepDeps {
  rules: RuleFile;
  autoscalers: AutoscalersPort;
  state: StateStore;
  logger: Logger;
  /** The orchestrator's KV prefix, ending in `/`. */
  kvPrefix: string;
  /** Project of autoscalers whose rule names none. */
  project?: string;
  now?: () => number;
  /** Attempts per autoscaler while another operation runs or a CAS loses (default 3). */
  maxAttempts?: number;
  retryDelayMs?: number;
  /** How long a written floor schedule may take to read ACTIVE before minNumReplicas holds it. */
  scheduleCheck?: ScheduleCheck;
  /** With a metrics writer: each named group's recent creation errors as `instance_creation_errors`. */
  groups?: GroupErrorsApi;
  metrics?: MetricsWriter;
}

export interface LeaseSweepOutcome {
  autoscaler: string;
  decision: Decision;
  reason: string;
  requestId?: string;
}

/** Every autoscaler the rule file names, with the first tier naming it (as matchIncident's order would). */
function namedAutoscalers(rules: RuleFile, project: string | undefined) {
  const refs = new Map<string, { ref: AutoscalerLocation; tierName: string }>();
  for (const [tierName, tier] of Object.entries(rules.tiers))
    for (const a of tier.autoscalers) {
      const p = a.project ?? project;
      if (p === undefined) continue;
      const ref = { ...a, project: p };
      if (!refs.has(autoscalerKey(ref))) refs.set(autoscalerKey(ref), { ref, tierName });
    }
  return refs;
}

/**
 * The lease pass (healthSweep runs it after its node sweep): for every autoscaler the rule file
 * names that has a record, `planSweep` drops expired leases, reverts what they held and applies
 * escalations a guardrail withheld, through the same loop as the handler (act.ts). One
 * autoscaler's failure is logged and reported (`retry`: the next pass tries again; `failed`), and
 * the pass goes on; it never throws.
 */
export async function sweepLeases(
  deps: LeaseSweepDeps,
  options: { dryRun: boolean },
): Promise<LeaseSweepOutcome[]> {
  const act = {
    rules: deps.rules,
    autoscalers: deps.autoscalers,
    state: deps.state,
    logger: deps.logger,
    clock: deps.now ?? Date.now,
    maxAttempts: deps.maxAttempts ?? 3,
    retryDelayMs: deps.retryDelayMs ?? 500,
    scheduleCheck: deps.scheduleCheck,
  };
  const out: LeaseSweepOutcome[] = [];
  for (const [name, { ref, tierName }] of namedAutoscalers(deps.rules, deps.project)) {
    const tier = deps.rules.tiers[tierName]!;
    try {
      const result = await actOnAutoscaler(act, {
        ref,
        name,
        tier: tierName,
        key: stateKey(deps.kvPrefix, ref),
        dryRun: options.dryRun,
        recordedOnly: true,
        missing: 'skipped',
        quiet: (plan) => plan.decision === 'noop' && plan.reason === 'in-force',
        message: 'scalingAlerts lease sweep',
        fields: { tier: tierName },
        plan: (input) => planSweep({ rules: deps.rules, tierName, tier, ref, ...input }),
      });
      if (!result) continue;
      const { decision, reason, requestId } = result.outcome;
      out.push({ autoscaler: name, decision, reason, ...(requestId ? { requestId } : {}) });
    } catch (err) {
      const decision = err instanceof TransientError ? 'retry' : 'failed';
      const reason = err instanceof Error ? err.message : String(err);
      out.push({ autoscaler: name, decision, reason });
      deps.logger.warn(
        { autoscaler: name, tier: tierName, decision, reason, dryRun: options.dryRun || undefined },
        `scalingAlerts lease sweep: ${decision}`,
      );
    }
  }
  if (!options.dryRun) await publishCreationErrors(deps);
  return out;
}

/**
 * The groups' recorded creation errors of the window, one point per group and code, best effort:
 * a group or a write that fails is a WARNING line and the pass goes on.
 */
async function publishCreationErrors(deps: LeaseSweepDeps): Promise<void> {
  const { groups, metrics, project } = deps;
  if (!groups || !metrics || project === undefined) return;
  const now = (deps.now ?? Date.now)();
  const points: MetricPoint[] = [];
  for (const [name, { ref }] of namedAutoscalers(deps.rules, project)) {
    try {
      const autoscaler = await deps.autoscalers.get(ref);
      const read = autoscaler ? await readGrowth(groups, autoscaler, now) : undefined;
      if (read) points.push(...creationErrorPoints(read.growth.group, read.errors));
    } catch (err) {
      deps.logger.warn(
        { autoscaler: name, reason: (err as Error).message },
        'scalingAlerts: group errors not read',
      );
    }
  }
  if (!points.length) return;
  try {
    await metrics.write(project, points, now);
  } catch (err) {
    deps.logger.warn({ reason: (err as Error).message }, 'scalingAlerts: creation errors not published');
  }
}
