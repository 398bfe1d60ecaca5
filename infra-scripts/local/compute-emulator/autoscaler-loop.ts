import { type InstanceSignal, type Recommendation, recommend, scheduleState } from './autoscaling';
import type { MigController } from './mig-controller';
import type { Registry } from './registry';
import type { Runtime } from './runtime';
import { type Autoscaler, igmKey, lastSegment } from './state';

export type MetricSource = (metricType: string, instanceId: string) => number | undefined;

/**
 * Runs the autoscalers: gathers each group's signals (age, CPU through the driver, custom metrics from
 * the Monitoring store), asks the pure policy (autoscaling.ts) and resizes the group to its answer.
 */
export class AutoscalerLoop {
  /** Recent recommendations per autoscaler, for stabilization and scale-in controls. */
  private readonly history = new Map<string, Recommendation[]>();

  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly migs: MigController,
    private readonly metric: MetricSource | undefined,
  ) {}

  async runAll(): Promise<void> {
    for (const a of this.registry.allAutoscalers()) await this.runOne(a);
  }

  async runOne(a: Autoscaler): Promise<void> {
    const igm = this.registry.findIgm(a.scope, lastSegment(a.target));
    if (!igm || this.rt.stopped) return;
    const { clock, driver, logger, stabilizationSec } = this.rt.settings;
    const now = clock();
    const signals: InstanceSignal[] = [];
    for (const { instance } of this.registry.managedInstances(igm)) {
      if (!instance || instance.status !== 'RUNNING') continue;
      const metrics: Record<string, number | undefined> = {};
      for (const m of a.policy.customMetricUtilizations)
        metrics[m.metric] = this.metric?.(m.metric, instance.id);
      signals.push({
        ageSec: (now - Date.parse(instance.creationTimestamp)) / 1000,
        cpu: a.policy.cpuUtilization ? await driver.cpu?.(instance.id) : undefined,
        metrics,
      });
    }
    const key = igmKey(a.scope, a.name);
    const stabilization = a.policy.stabilizationPeriodSec ?? stabilizationSec;
    const schedules = scheduleState(a.policy, now, {
      pastStart: this.rt.settings.pastScheduleStart,
      writtenAt: a.scheduleWrittenAt,
    });
    a.scheduleStatus = schedules.status;
    const windowMs = Math.max(stabilization, a.policy.scaleInControl?.timeWindowSec ?? 0) * 1000;
    const history = (this.history.get(key) ?? []).filter((r) => now - r.at <= windowMs);
    const decision = recommend({
      policy: a.policy,
      targetSize: igm.targetSize,
      signals,
      history,
      now,
      stabilizationSec: stabilization,
      scheduledMinimum: schedules.minimum,
    });
    history.push({ at: now, raw: decision.raw, size: decision.recommendedSize });
    this.history.set(key, history);
    a.recommendedSize = decision.recommendedSize;
    a.statusDetails = decision.details;
    if (decision.recommendedSize !== igm.targetSize) {
      this.registry.events.record(
        'autoscale',
        `${a.name}: ${igm.name} ${igm.targetSize} -> ${decision.recommendedSize}`,
      );
      logger.info(
        {
          autoscaler: a.name,
          igm: igm.name,
          from: igm.targetSize,
          to: decision.recommendedSize,
          signals: signals.length,
        },
        'autoscaler resizes group',
      );
      igm.targetSize = decision.recommendedSize;
      this.migs.reconcile(igm);
    }
  }
}
