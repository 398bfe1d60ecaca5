import type { Logger } from '../logging';
import {
  AutoscalerBusyError,
  AutoscalerError,
  type AutoscalersPort,
  type ScopedAutoscalerRef,
} from './compute';
import { canonical } from './handler';
import { ownsAutoscaler, planSweep, stateKey, type Decision } from './plan';
import { autoscalerKey, type RuleFile } from './rules';
import type { StateStore } from './state-store';

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
}

export interface LeaseSweepOutcome {
  autoscaler: string;
  decision: Decision | 'skip' | 'error';
  reason: string;
  requestId?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The lease pass (healthSweep runs it after its node sweep): for every autoscaler the rule file
 * names that has a record, `planSweep` drops expired leases, reverts what they held and applies
 * escalations a guardrail withheld; the record is written (CAS) before the patch, as the handler
 * does. One autoscaler's failure is logged and reported, and the pass goes on; it never throws.
 */
export async function sweepLeases(
  deps: LeaseSweepDeps,
  options: { dryRun: boolean },
): Promise<LeaseSweepOutcome[]> {
  const clock = deps.now ?? Date.now;
  const maxAttempts = deps.maxAttempts ?? 3;
  const out: LeaseSweepOutcome[] = [];
  const refs = new Map<string, { ref: ScopedAutoscalerRef; tierName: string }>();
  for (const [tierName, tier] of Object.entries(deps.rules.tiers))
    for (const a of tier.autoscalers) {
      const project = a.project ?? deps.project;
      // The first tier naming an autoscaler plans for it, as matchIncident's order would.
      const ref = { ...a, project: project ?? '' };
      if (project !== undefined && !refs.has(autoscalerKey(ref)))
        refs.set(autoscalerKey(ref), { ref, tierName });
    }
  for (const [name, { ref, tierName }] of refs) {
    const tier = deps.rules.tiers[tierName]!;
    const key = stateKey(deps.kvPrefix, ref);
    const report = (decision: LeaseSweepOutcome['decision'], reason: string, requestId?: string) => {
      out.push({ autoscaler: name, decision, reason, ...(requestId ? { requestId } : {}) });
      const level = decision === 'error' || decision === 'refuse' ? 'warn' : 'info';
      deps.logger[level](
        {
          autoscaler: name,
          tier: tierName,
          decision,
          reason,
          requestId,
          dryRun: options.dryRun || undefined,
        },
        `scalingAlerts lease sweep: ${decision}`,
      );
    };
    let delay = deps.retryDelayMs ?? 500;
    try {
      for (let attempt = 1; ; attempt++) {
        const stored = await deps.state.get(key);
        if (!stored) break; // nothing leased here
        const autoscaler = await deps.autoscalers.get(ref);
        if (!autoscaler) {
          report('skip', 'not-found: no such autoscaler');
          break;
        }
        const ownerLabels =
          deps.rules.ownership.label !== undefined &&
          !ownsAutoscaler(autoscaler.name, { ...deps.rules.ownership, label: undefined })
            ? await deps.autoscalers.ownerLabels(ref, autoscaler)
            : undefined;
        const plan = planSweep({
          rules: deps.rules,
          tierName,
          tier,
          ref,
          autoscaler,
          ownerLabels,
          state: stored.value,
          now: clock(),
        });
        if (options.dryRun || (!plan.state && !plan.patch)) {
          if (options.dryRun || plan.decision !== 'noop' || plan.reason !== 'in-force')
            report(plan.decision, plan.reason, plan.requestId);
          break;
        }
        if (plan.state && !(await deps.state.cas(key, plan.state, stored.index))) {
          if (attempt >= maxAttempts) throw new Error(`${key}: record changed concurrently ${attempt} times`);
          continue;
        }
        if (!plan.patch || !plan.requestId) {
          report(plan.decision, plan.reason);
          break;
        }
        try {
          await deps.autoscalers.apply(ref, autoscaler, plan.patch, plan.requestId);
          report(plan.decision, plan.reason, plan.requestId);
          break;
        } catch (err) {
          // Refused before it started: the record goes back, so nothing that never happened counts.
          if (err instanceof AutoscalerError && err.refused && plan.state) {
            const now = await deps.state.get(key);
            if (now && canonical(now.value) === canonical(plan.state))
              await (stored.value
                ? deps.state.cas(key, stored.value, now.index)
                : deps.state.remove(key, now.index));
          }
          if (err instanceof AutoscalerBusyError && attempt < maxAttempts) {
            await sleep(delay);
            delay *= 2;
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      report('error', err instanceof Error ? err.message : String(err));
    }
  }
  return out;
}
