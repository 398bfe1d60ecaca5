import type { AuditEmitter } from './audit';
import type { InstanceSpec } from './driver';
import { notReady } from './errors';
import type { OperationTarget, Operations } from './operations';
import type { Registry } from './registry';
import { type Actor, bounded, type Caller, type Runtime } from './runtime';
import { type Igm, type Instance, links, type Operation } from './state';

/**
 * Instance lifecycle through the driver: boot, delete (shutdown script, then gone), stop, and the
 * emulator's fault controls (preempt, crash, hang). Each change is audited; a change to a managed
 * instance asks its group to reconcile.
 */
export class InstanceLifecycle {
  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly operations: Operations,
    private readonly audit: AuditEmitter,
    private readonly reconcile: (igm: Igm) => void,
  ) {}

  /**
   * Registers a PROVISIONING instance and boots it under its own operation, as a MIG's
   * `instances.insert`; on failure the instance and its address are given back.
   */
  async boot(inst: Instance, actor: Actor): Promise<void> {
    this.registry.addInstance(inst);
    const op = this.operations.create(this.target(inst, 'insert'));
    this.audit.instance(inst, 'v1.compute.instances.insert', 'first', actor, op);
    try {
      inst.status = 'STAGING';
      await this.rt.settings.driver.create(this.specOf(inst));
    } catch (err) {
      this.registry.removeInstance(inst);
      this.registry.releaseAddress(inst.networkIP);
      this.operations.finish(op, err);
      throw err;
    }
    inst.status = 'RUNNING';
    inst.busy = false;
    this.audit.instance(inst, 'v1.compute.instances.insert', 'last', actor, op);
    this.operations.finish(op);
  }

  /**
   * Deletes an instance as GCE does: shutdown script within the timeout, then gone. Under `apiOp`
   * (a caller's delete) that operation is the caller's to finish; else it runs under its own.
   */
  async remove(inst: Instance, actor: Actor, apiOp?: Operation): Promise<void> {
    const op = apiOp ?? this.operations.create(this.target(inst, 'delete'));
    this.audit.instance(inst, 'v1.compute.instances.delete', 'first', actor, op);
    inst.status = 'STOPPING';
    const { driver, shutdownTimeoutMs } = this.rt.settings;
    if (inst.hung) await driver.kill(inst.id);
    else await driver.shutdown(inst.id, shutdownTimeoutMs);
    this.registry.removeInstance(inst);
    this.registry.releaseAddress(inst.networkIP);
    this.audit.instance(inst, 'v1.compute.instances.delete', 'last', actor, op);
    if (!apiOp) this.operations.finish(op);
    this.registry.record('deleted', `${inst.name} (${inst.id})`);
    const igm = this.registry.igmOf(inst);
    if (igm && !this.rt.stopped) setImmediate(() => this.reconcile(igm));
  }

  // ---- the API's instance methods -----------------------------------------------------------------

  delete(zone: string, name: string, caller: Caller): Operation {
    const inst = this.claim(zone, name);
    const actor = this.rt.apiActor(caller);
    return this.operations.run(this.target(inst, 'delete'), actor, (op) => this.remove(inst, actor, op));
  }

  stop(zone: string, name: string, caller: Caller): Operation {
    const inst = this.claim(zone, name);
    const actor = this.rt.apiActor(caller);
    return this.operations.run(this.target(inst, 'stop'), actor, async (op) => {
      this.audit.instance(inst, 'v1.compute.instances.stop', 'first', actor, op);
      inst.status = 'STOPPING';
      await this.rt.settings.driver.shutdown(inst.id, this.rt.settings.shutdownTimeoutMs);
      inst.status = 'TERMINATED';
      inst.hung = false;
      inst.busy = false;
      this.audit.instance(inst, 'v1.compute.instances.stop', 'last', actor, op);
    });
  }

  // ---- emulator controls --------------------------------------------------------------------------

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
      this.registry.record('preempted', `${inst.name} (${inst.id})`);
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
      this.registry.record('hostError', `${inst.name} (${inst.id})`);
      await bounded(this.rt.stopRequested, restartDelayMs);
      if (this.rt.stopped) return;
      inst.status = 'STAGING';
      await driver.create(this.specOf(inst));
      inst.status = 'RUNNING';
      this.audit.system(
        inst,
        'compute.instances.automaticRestart',
        'Instance automatically restarted by Compute Engine.',
      );
      this.registry.record('automaticRestart', `${inst.name} (${inst.id})`);
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
    this.registry.record(hung ? 'hang' : 'unhang', inst.name);
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

  /** The instance, marked busy so that nothing else acts on it meanwhile; refused if already busy. */
  private claim(zone: string, name: string): Instance {
    const inst = this.registry.getInstance(zone, name);
    if (inst.busy) throw notReady(`projects/${this.rt.project}/zones/${zone}/instances/${name}`);
    inst.busy = true;
    return inst;
  }

  private target(inst: Instance, operationType: string): OperationTarget {
    return {
      scope: { kind: 'zones', name: inst.zone },
      operationType,
      targetLink: links.instance(this.rt.project, inst.zone, inst.name),
      targetId: inst.id,
    };
  }

  private specOf(inst: Instance): InstanceSpec {
    return {
      project: this.rt.project,
      projectNumber: this.rt.settings.projectNumber,
      zone: inst.zone,
      name: inst.name,
      id: inst.id,
      ip: inst.networkIP,
      machineType: inst.machineType,
      tags: inst.tags,
      metadata: inst.metadata,
      labels: inst.labels,
    };
  }
}
