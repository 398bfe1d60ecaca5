import type { AuditEmitter } from './audit';
import { notReady } from './errors';
import { instanceSpec } from './instances';
import type { Registry } from './registry';
import { bounded, type Runtime } from './runtime';
import type { Igm, Instance } from './state';

/**
 * The emulator's fault controls on instances: preemption, a host error (with GCE's automatic
 * restart) and a hang. Each runs in the background, is audited as GCE logs it, and lets the
 * instance's group reconcile afterwards.
 */
export class InstanceFaults {
  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly audit: AuditEmitter,
    private readonly reconcile: (igm: Igm) => void,
  ) {}

  /**
   * Preemption: GCE logs `compute.instances.preempted`, gives the shutdown script
   * `preemptionShutdownMs` (ACPI soft off; 0 kills at once) and the instance ends TERMINATED; a MIG
   * then recreates it.
   */
  preempt(zone: string, name: string): Instance {
    const inst = this.claimRunning(zone, name);
    const { driver, preemptionShutdownMs } = this.rt.settings;
    this.track(inst, async () => {
      inst.status = 'STOPPING';
      this.audit.system(inst, 'compute.instances.preempted', 'Instance was preempted.');
      this.registry.events.record('preempted', `${inst.name} (${inst.id})`);
      if (preemptionShutdownMs > 0 && !inst.hung) await driver.shutdown(inst.id, preemptionShutdownMs);
      else await driver.kill(inst.id);
      inst.status = 'TERMINATED';
      inst.hung = false;
    });
    return inst;
  }

  /**
   * A host error: the instance dies at once (`compute.instances.hostError`) and, with automatic
   * restart, GCE boots it again in place, same id, logging `compute.instances.automaticRestart`.
   */
  crash(zone: string, name: string): Instance {
    const inst = this.claimRunning(zone, name);
    const { driver, restartDelayMs } = this.rt.settings;
    this.track(inst, async () => {
      await driver.kill(inst.id);
      inst.status = 'TERMINATED';
      inst.hung = false;
      this.audit.system(inst, 'compute.instances.hostError', 'Instance terminated by Compute Engine.');
      this.registry.events.record('hostError', `${inst.name} (${inst.id})`);
      await bounded(this.rt.stopRequested, restartDelayMs);
      if (this.rt.stopped) return;
      inst.status = 'STAGING';
      await driver.create(instanceSpec(this.rt, inst));
      inst.status = 'RUNNING';
      this.audit.system(
        inst,
        'compute.instances.automaticRestart',
        'Instance automatically restarted by Compute Engine.',
      );
      this.registry.events.record('automaticRestart', `${inst.name} (${inst.id})`);
    });
    return inst;
  }

  /** Freezes (or thaws) an instance's processes; GCE still reports it RUNNING. */
  async hang(zone: string, name: string, hung: boolean): Promise<Instance> {
    const inst = this.registry.getInstance(zone, name);
    if (inst.status !== 'RUNNING' || inst.busy)
      throw notReady(`projects/${this.rt.project}/zones/${zone}/instances/${name}`);
    await this.rt.settings.driver.freeze(inst.id, hung);
    inst.hung = hung;
    this.registry.events.record(hung ? 'hang' : 'unhang', inst.name);
    return inst;
  }

  /** A RUNNING instance nothing else acts on, now marked busy; else the API's resourceNotReady. */
  private claimRunning(zone: string, name: string): Instance {
    const inst = this.registry.getInstance(zone, name);
    if (inst.status !== 'RUNNING' || inst.busy)
      throw notReady(`projects/${this.rt.project}/zones/${zone}/instances/${name}`);
    inst.busy = true;
    return inst;
  }

  /** Runs a fault in the background; whatever happens, the instance's group reconciles afterwards. */
  private track(inst: Instance, work: () => Promise<void>): void {
    this.rt.track(
      work()
        .catch((err: unknown) => {
          inst.status = 'TERMINATED';
          this.rt.settings.logger.error({ err, instance: inst.name }, 'preemption/host error failed');
        })
        .finally(() => {
          inst.busy = false;
          const igm = this.registry.igmOf(inst);
          if (igm && !this.rt.stopped) this.reconcile(igm);
        }),
    );
  }
}
