import { PermanentError, TransientError } from '../errors';
import type { Autoscaler } from '../gcp/autoscaler-schema';
import type { AppliedOperation, AutoscalerLocation, AutoscalersPort } from '../gcp/autoscalers';
import { ResourceBusyError, wasRefused } from '../gcp/errors';
import { canonical } from '../gcp/merge-patch';
import type { MetricPoint } from '../gcp/monitoring';
import type { Logger } from '../logging';
import type { Decision } from '../outcome';
import { decisionPoint, ownsAutoscaler, type Plan } from './plan';
import type { Growth } from './growth';
import type { RuleFile } from './rules';
import { defaultScheduleCheck, scheduleActive, type ScheduleCheck } from './schedule';
import type { AutoscalerState, StateStore, StoredState } from './state';

/**
 * The one loop that changes an autoscaler, for the handler and the lease sweep alike: read the
 * autoscaler and our record → owner labels when the name does not decide → plan → write the record
 * (CAS) → send the patch → on a refusal put the record back → when the autoscaler is busy, read
 * again and plan again, with a doubling pause.
 */

/** Our record changed between our read and our compare-and-set more times than we try. */
export class ConcurrentUpdateError extends TransientError {
  override name = 'ConcurrentUpdateError';
}

export interface AutoscalerOutcome {
  autoscaler: string;
  decision: Decision;
  reason: string;
  requestId?: string;
  operation?: string;
  attempts: number;
}

export interface ActDeps {
  rules: RuleFile;
  autoscalers: AutoscalersPort;
  state: StateStore;
  logger: Logger;
  clock: () => number;
  /** Attempts while another operation runs (resourceNotReady) or a CAS loses. */
  maxAttempts: number;
  /** First pause between attempts; doubles each time. */
  retryDelayMs: number;
  /** How long a written schedule may take to read ACTIVE (default 20 s, read every 4 s). */
  scheduleCheck?: ScheduleCheck;
}

export interface ActJob {
  ref: AutoscalerLocation;
  /** Name of the autoscaler in logs and outcomes. */
  name: string;
  tier: string;
  key: string;
  dryRun: boolean;
  plan(input: {
    autoscaler: Autoscaler;
    ownerLabels?: Record<string, string>;
    state: AutoscalerState | null;
    now: number;
    inactiveSchedules?: string[];
    scheduleBoundMs: number;
    growth?: Growth;
  }): Plan;
  /** Whether the autoscaler's group can grow, read before each plan (the handler's floors). */
  growth?: (autoscaler: Autoscaler) => Promise<Growth | undefined>;
  /** Our schedules read back as not ACTIVE after the bound: the pass that falls back. */
  inactiveSchedules?: string[];
  /** Only autoscalers we hold a record of (the lease sweep): none, nothing to do. */
  recordedOnly?: boolean;
  /** The decision when the autoscaler does not exist. */
  missing: Extract<Decision, 'refused' | 'skipped'>;
  /** Plans not worth a log line nor an outcome (the sweep's leases in force). */
  quiet?: (plan: Plan) => boolean;
  /** The log message (`<message>: <decision>`) and fields of every line. */
  message: string;
  fields: Record<string, unknown>;
}

export interface ActResult {
  outcome: AutoscalerOutcome;
  metrics: MetricPoint[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What we wrote, and the record before it: a replan after a refusal starts from `before`. */
interface Ours {
  written: AutoscalerState;
  before: StoredState | null;
  now: number;
}

/** Puts back the record as it was before our write, if ours is still the one stored. */
async function rollBack(state: StateStore, key: string, ours: Ours) {
  const now = await state.get(key);
  if (!now || canonical(now.value) !== canonical(ours.written)) return;
  if (ours.before?.value) await state.cas(key, ours.before.value, now.index);
  else await state.remove(key, now.index);
}

/**
 * Reads the autoscaler until GCE reports each schedule ACTIVE, for at most the bound; resolves to
 * those still not ACTIVE. A failed read leaves the decision to the next delivery or lease pass.
 */
async function inactiveAfterWrite(deps: ActDeps, job: ActJob, names: string[]): Promise<string[]> {
  const check = deps.scheduleCheck ?? defaultScheduleCheck;
  const reads = Math.ceil(check.boundMs / Math.max(check.intervalMs, 1)) + 1;
  let left = names;
  for (let i = 0; i < reads && left.length; i++) {
    if (i > 0) await sleep(check.intervalMs);
    try {
      const a = await deps.autoscalers.get(job.ref);
      if (!a) return [];
      left = left.filter((n) => !scheduleActive(a, n));
    } catch (err) {
      deps.logger.warn(
        { ...job.fields, autoscaler: job.name, decision: 'skipped', reason: (err as Error).message },
        'scalingAlerts: schedule not verified, the next pass checks it',
      );
      return [];
    }
  }
  return left;
}

type AutoscalerRead = { autoscaler: Autoscaler | null } | { err: unknown };

/** The autoscaler and our record, together; with `recordedOnly`, the record first (null: none). */
async function readBoth(deps: ActDeps, job: ActJob): Promise<[AutoscalerRead, StoredState | null] | null> {
  const autoscaler = () =>
    deps.autoscalers.get(job.ref).then(
      (a): AutoscalerRead => ({ autoscaler: a }),
      (err: unknown): AutoscalerRead => ({ err }),
    );
  if (!job.recordedOnly) return Promise.all([autoscaler(), deps.state.get(job.key)]);
  const stored = await deps.state.get(job.key);
  return stored ? [await autoscaler(), stored] : null;
}

/**
 * Runs the loop for one autoscaler. Resolves with the outcome (null: nothing to report) and its
 * decision metric; a permanent failure of Compute resolves as `failed`; a transient one throws.
 */
export function actOnAutoscaler(
  deps: ActDeps,
  job: ActJob & { recordedOnly?: false; quiet?: undefined },
): Promise<ActResult>;
export function actOnAutoscaler(deps: ActDeps, job: ActJob): Promise<ActResult | null>;
export async function actOnAutoscaler(deps: ActDeps, job: ActJob): Promise<ActResult | null> {
  const { logger } = deps;
  const report = (
    outcome: AutoscalerOutcome,
    extra: Record<string, unknown> = {},
    metrics?: MetricPoint[],
  ) => {
    const level = outcome.decision === 'failed' ? 'error' : outcome.decision === 'refused' ? 'warn' : 'info';
    logger[level](
      { ...job.fields, ...outcome, attempts: undefined, attempt: outcome.attempts, ...extra },
      `${job.message}: ${outcome.decision}`,
    );
    return { outcome, metrics: metrics ?? [decisionPoint(job.name, job.tier, outcome.decision)] };
  };
  // Only a classified permanent failure is acknowledged; anything else goes to the caller.
  const fail = (err: unknown, attempts: number, metrics?: MetricPoint[]) => {
    if (!(err instanceof PermanentError)) throw err;
    const failed = metrics?.map((m) =>
      m.labels.decision === undefined ? m : { ...m, labels: { ...m.labels, decision: 'failed' } },
    );
    return report({ autoscaler: job.name, decision: 'failed', reason: err.message, attempts }, {}, failed);
  };

  let ours: Ours | undefined;
  let delay = deps.retryDelayMs;
  for (let attempt = 1; ; attempt++) {
    const reads = await readBoth(deps, job);
    if (!reads) return null;
    const [read, stored] = reads;
    if ('err' in read) return fail(read.err, attempt);
    const { autoscaler } = read;
    if (!autoscaler) {
      if (ours) await rollBack(deps.state, job.key, ours);
      const reason = 'not-found: no such autoscaler';
      return report({ autoscaler: job.name, decision: job.missing, reason, attempts: attempt });
    }
    // Ownership by label costs two reads (group, template): only when the name does not decide.
    const ownerLabels =
      deps.rules.ownership.label !== undefined &&
      !ownsAutoscaler(autoscaler.name, { ...deps.rules.ownership, label: undefined })
        ? await deps.autoscalers.ownerLabels(job.ref, autoscaler)
        : undefined;
    // After a refused or busy patch, plan again from the record as it was before our own
    // (unapplied) write, at the same time: the same lease and request id, no cooldown from it.
    const replan = ours !== undefined && canonical(stored?.value) === canonical(ours.written);
    const before = replan && ours ? ours.before : stored;
    const now = replan && ours ? ours.now : deps.clock();
    const scheduleBoundMs = (deps.scheduleCheck ?? defaultScheduleCheck).boundMs;
    const growth = job.growth ? await job.growth(autoscaler) : undefined;
    const plan = job.plan({
      growth,
      autoscaler,
      ownerLabels,
      state: before?.value ?? null,
      now,
      inactiveSchedules: job.inactiveSchedules,
      scheduleBoundMs,
    });
    const outcome = (decision: Decision = plan.decision, reason = plan.reason): AutoscalerOutcome => ({
      autoscaler: plan.autoscaler,
      decision,
      reason,
      ...(plan.requestId ? { requestId: plan.requestId } : {}),
      attempts: attempt,
    });
    const details = {
      patch: plan.patch?.autoscalingPolicy,
      withheld: plan.withheld.length ? plan.withheld : undefined,
      refused: plan.refused.length ? plan.refused : undefined,
    };
    if (job.dryRun) {
      const decision = plan.decision === 'applied' ? 'planned' : plan.decision;
      return report(outcome(decision), { ...details, dryRun: true }, plan.metrics);
    }
    if (job.quiet?.(plan) && !plan.state && !plan.patch) return null;

    if (plan.state) {
      // Against the index read this time: a record another delivery changed meanwhile is read again.
      if (!(await deps.state.cas(job.key, plan.state, stored?.index ?? 0))) {
        if (attempt >= deps.maxAttempts)
          throw new ConcurrentUpdateError(`${job.key}: record changed concurrently ${attempt} times`);
        continue;
      }
      ours = { written: plan.state, before, now };
    }
    if (!plan.patch || !plan.requestId) return report(outcome(), details, plan.metrics);
    let applied: AppliedOperation;
    try {
      applied = await deps.autoscalers.apply(job.ref, autoscaler, plan.patch, plan.requestId);
    } catch (err) {
      if (err instanceof ResourceBusyError && attempt < deps.maxAttempts) {
        logger.info(
          { ...job.fields, autoscaler: plan.autoscaler, decision: 'retry', reason: err.message, attempt },
          'scalingAlerts: autoscaler busy, reading it again',
        );
        await sleep(delay);
        delay *= 2;
        continue;
      }
      // Refused before it started: the record goes back, so a redelivery or a later notification
      // is not held back by a change that never happened.
      if (wasRefused(err) && ours) await rollBack(deps.state, job.key, ours);
      return fail(err, attempt, plan.metrics);
    }
    const result = report(
      { ...outcome(), operation: applied.operation },
      { ...details, method: applied.method },
      plan.metrics,
    );
    return plan.verify?.length && !job.inactiveSchedules
      ? await verifyFloors(deps, job, plan, result)
      : result;
  }
}

/**
 * After a patch wrote floor schedules: read them back; those GCE does not report ACTIVE within the
 * bound make one more pass of the loop (read, plan, record by CAS, patch) that holds the floors in
 * minNumReplicas instead. Its outcome replaces the first unless it had nothing to do.
 */
async function verifyFloors(deps: ActDeps, job: ActJob, plan: Plan, first: ActResult): Promise<ActResult> {
  const inactive = await inactiveAfterWrite(deps, job, plan.verify ?? []);
  if (!inactive.length) return first;
  const boundMs = (deps.scheduleCheck ?? defaultScheduleCheck).boundMs;
  deps.logger.warn(
    {
      ...job.fields,
      autoscaler: plan.autoscaler,
      decision: 'planned',
      action: 'raise-min',
      reason: `schedule-inactive: not ACTIVE ${boundMs} ms after the write: ${inactive.join(', ')}`,
    },
    'scalingAlerts: floor falls back to minNumReplicas',
  );
  const again = await actOnAutoscaler(deps, { ...job, inactiveSchedules: inactive });
  return again && again.outcome.decision !== 'noop' ? again : first;
}
