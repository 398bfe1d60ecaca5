import type { AuditEmitter } from './audit';
import type { InstanceSpec } from './driver';
import { notReady } from './errors';
import type { OperationTarget, Operations } from './operations';
import type { Registry } from './registry';
import type { Actor, Caller, Runtime } from './runtime';
import { type Igm, type Instance, links, type Operation } from './state';

/**
 * Instance lifecycle through the driver: boot, delete (shutdown script, then gone) and stop (the
 * emulator's fault controls are in `InstanceFaults`). Each change is audited; a change to a managed
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
      await this.rt.settings.driver.create(instanceSpec(this.rt, inst));
    } catch (err) {
      this.registry.removeInstance(inst);
      this.registry.addresses.release(inst.networkIP);
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
    this.registry.addresses.release(inst.networkIP);
    this.audit.instance(inst, 'v1.compute.instances.delete', 'last', actor, op);
    if (!apiOp) this.operations.finish(op);
    this.registry.events.record('deleted', `${inst.name} (${inst.id})`);
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
}

/** What the driver needs to run an instance. */
export function instanceSpec(rt: Runtime, inst: Instance): InstanceSpec {
  return {
    project: rt.project,
    projectNumber: rt.settings.projectNumber,
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
