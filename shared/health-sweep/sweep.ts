import { randomUUID } from 'node:crypto';
import type { GroupsApi } from '../gcp/groups';
import type { InstancesApi } from '../gcp/instances';
import type { MetricsWriter } from '../gcp/monitoring';
import type { ConsulClient } from '../consul';
import { classifyError } from '../errors';
import type { Ledger } from '../ledger/ledger';
import type { Logger } from '../logging';
import type { Decision } from '../outcome';
import { createActionExecutor } from './actions';
import { noCalls, type ApiCalls } from './calls';
import type { HealthSweepConfig } from './config';
import { acquireSweepLock, type LockConsul, type SweepLock } from './lock';
import { metricPoints } from './metrics';
import { planSweep, type SweepAction, type SweepReport } from './plan';
import { observeWorld, type SweepConsul } from './read';
import { stateOps, writeState, type HealthSweepKeys } from './state';

/**
 * One sweep, the imperative shell around the pure planner: lock → observe → plan → write the
 * marks and the bucket (CAS) → act within the plan → metrics → report. Nothing here decides what
 * to do; it only refuses to act when it cannot be sure it alone acts on what it read.
 */

export type HealthSweepConsul = SweepConsul &
  LockConsul & {
    catalog: Pick<ConsulClient['catalog'], 'nodes' | 'node' | 'deleteNodeCas'>;
    kv: Pick<ConsulClient['kv'], 'get' | 'set' | 'keys' | 'list' | 'cas' | 'delete' | 'acquire' | 'release'>;
    txn: ConsulClient['txn'];
  };

export interface HealthSweepDeps {
  config: HealthSweepConfig;
  consul: HealthSweepConsul;
  groups: GroupsApi;
  instances: InstancesApi;
  metrics: MetricsWriter | null;
  /**
   * Force-leave with prune after a deregistration, through the separately held operator token
   * (CONSUL_FORCE_LEAVE_TOKEN, infra-scripts/acl/force-leave.hcl); absent or null: none, and a
   * failed member is left to Consul's reconnect timeout.
   */
  forceLeave?: ((node: string) => Promise<unknown>) | null;
  /** instanceEvents' ledger, whose purge the sweep runs. */
  ledger: Pick<Ledger, 'purge'>;
  keys: HealthSweepKeys;
  logger: Logger;
  /** Project the metrics are written to. */
  metricsProject: string;
  lockTtlSeconds?: number;
  lookupLimit?: number;
  /** Counts every API call of the sweeps run with these deps (the bench reads it). */
  calls?: ApiCalls;
  now?: () => number;
}

export type ActionOutcome = 'done' | 'skipped' | 'failed' | 'not-attempted';

export interface SweepResult {
  status: 'completed' | 'locked';
  dryRun: boolean;
  durationMs: number;
  apiCalls: ApiCalls;
  /** Why nothing (more) was done although the plan had actions. */
  stopped?: 'cas-lost' | 'lock-lost' | 'state-write-failed';
  /** Each planned action and what became of it. */
  done: Array<{ action: SweepAction; outcome: ActionOutcome; detail?: string }>;
  report?: SweepReport;
}

export function createHealthSweep(deps: HealthSweepDeps) {
  const { config, consul, logger, keys } = deps;
  const now = deps.now ?? Date.now;
  const calls = deps.calls ?? noCalls();
  const act = createActionExecutor(deps, calls);

  const sweep = async (
    options: { dryRun: boolean },
    lock: SweepLock | null,
    started: number,
  ): Promise<Omit<SweepResult, 'status' | 'durationMs' | 'apiCalls'>> => {
    const obs = await observeWorld(
      {
        consul,
        groups: deps.groups,
        instances: deps.instances,
        keys,
        calls,
        lookupLimit: deps.lookupLimit ?? 50,
      },
      config,
      started,
    );
    const plan = planSweep(config, obs);
    const done: SweepResult['done'] = plan.actions.map((action) => ({ action, outcome: 'not-attempted' }));
    if (options.dryRun) return { dryRun: true, done, report: plan.report };

    let stopped: SweepResult['stopped'];
    if (!lock?.held()) stopped = 'lock-lost';
    else {
      try {
        if (!(await writeState(consul, stateOps(plan, keys), () => calls.consul++))) stopped = 'cas-lost';
      } catch (err) {
        logger.warn({ reason: classifyError(err).message }, 'sweep state not written: acting on nothing');
        stopped = 'state-write-failed';
      }
    }
    for (const entry of done) {
      if (stopped) break;
      if (!lock?.held()) {
        stopped = 'lock-lost';
        break;
      }
      try {
        Object.assign(entry, await act(entry.action));
      } catch (err) {
        // One failed action does not stop the others; the next sweep sees what is left.
        entry.outcome = 'failed';
        entry.detail = classifyError(err).message;
      }
    }
    return { dryRun: false, done, report: plan.report, ...(stopped ? { stopped } : {}) };
  };

  return async function runSweep(options: { dryRun: boolean }): Promise<SweepResult> {
    const started = now();
    const before = { ...calls };
    const elapsed = () => ({
      durationMs: now() - started,
      apiCalls: {
        compute: calls.compute - before.compute,
        consul: calls.consul - before.consul,
        monitoring: calls.monitoring - before.monitoring,
      },
    });
    // A dry run changes nothing, so it needs no lock and never waits for one.
    let lock: SweepLock | null = null;
    if (!options.dryRun) {
      calls.consul += 2;
      lock = await acquireSweepLock(consul, {
        key: keys.lock,
        ttlSeconds: deps.lockTtlSeconds ?? 30,
        owner: randomUUID(),
        logger,
        now,
      });
      if (!lock) {
        const result: SweepResult = { status: 'locked', dryRun: false, done: [], ...elapsed() };
        logger.info(
          { decision: 'skipped', reason: 'locked', lock: keys.lock },
          'another sweep holds the lock: exiting',
        );
        return result;
      }
    }
    try {
      const outcome = await sweep(options, lock, started);
      const result: SweepResult = { status: 'completed', ...outcome, ...elapsed() };
      if (deps.metrics && result.report && !options.dryRun) {
        // Metrics never fail a sweep: a lost point is a gap in a chart.
        const actionsDone = result.done.filter((d) => d.outcome === 'done').map((d) => d.action);
        const points = metricPoints(
          { report: result.report, actions: actionsDone, bucket: null, marks: [] },
          result.durationMs,
        );
        await deps.metrics
          .write(deps.metricsProject, points, now())
          .catch((err: unknown) =>
            logger.warn({ reason: classifyError(err).message }, 'sweep metrics not written'),
          );
        result.apiCalls = elapsed().apiCalls;
      }
      logSweep(logger, result);
      return result;
    } finally {
      if (lock) {
        calls.consul += 2;
        await lock.release();
      }
    }
  };
}

/** The sweep as one decision (shared/outcome.ts), and why. */
function decisionOf(
  result: SweepResult,
  done: number,
  failed: number,
): { decision: Decision; reason?: string } {
  if (result.dryRun) return { decision: 'planned' };
  if (result.stopped) return { decision: 'skipped', reason: result.stopped };
  if (done > 0) return { decision: 'applied' };
  if (failed > 0) return { decision: 'failed', reason: 'every action failed' };
  const reportOnly = result.report?.reportOnly[0];
  if (reportOnly) return { decision: 'refused', reason: reportOnly };
  return { decision: 'noop' };
}

function logSweep(logger: Logger, result: SweepResult): void {
  const r = result.report;
  const count = (o: ActionOutcome) => result.done.filter((d) => d.outcome === o).length;
  logger.info(
    {
      ...decisionOf(result, count('done'), count('failed')),
      dryRun: result.dryRun,
      durationMs: result.durationMs,
      apiCalls: result.apiCalls,
      stopped: result.stopped,
      reportOnly: r?.reportOnly,
      incompleteReads: r?.incompleteReads,
      listing: r?.listing,
      seen: r?.seen,
      zones: r?.zones,
      stale: r?.stale.length,
      absent: r?.absent.length,
      kept: r?.kept.length,
      broken: r?.broken.length,
      orphans: r?.orphans.length,
      leftovers: r?.leftovers.length,
      identity: r?.identity.map((f) => ({ node: f.node, reason: f.reason })),
      refused: r?.refused.map((x) => ({ type: x.action.type, reason: x.reason })),
      done: count('done'),
      skipped: count('skipped'),
      failed: result.done.filter((d) => d.outcome === 'failed'),
    },
    result.dryRun ? 'health sweep (dry run): planned, nothing done' : 'health sweep done',
  );
}
