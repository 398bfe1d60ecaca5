import { AuditEmitter } from './audit';
import { DeployApi } from './deploy-api';
import { EmulatorReads } from './emulator-reads';
import { AutoscalerLoop } from './autoscaler-loop';
import { type AutoscalerInsert, AutoscalersApi } from './autoscalers';
import { GroupsApi, type IgmInsert, type IgmPatch, type InstancesAction } from './groups';
import { InstanceFaults } from './instance-faults';
import { InstanceLifecycle } from './instances';
import { GroupErrors } from './group-errors';
import { MigController } from './mig-controller';
import { Operations } from './operations';
import { Registry } from './registry';
import { type Caller, type EmulatorOptions, Runtime } from './runtime';
import type { Igm, Instance, Operation, Scope, Template, TemplateProperties } from './state';

export type { EmulatorEvent, ManagedInstance } from './registry';
export type { Caller, EmulatorOptions } from './runtime';

/**
 * The emulated Compute Engine, a facade over its parts: the registry of resources, operations, audit
 * emission, instance lifecycle, the MIG controller and the autoscaler loop, plus the API methods of
 * groups and autoscalers (its reads are in `EmulatorReads`). The HTTP server and the sandbox talk
 * only to this class.
 */
export class ComputeEmulator extends EmulatorReads {
  readonly project: string;
  readonly projectNumber: string;
  readonly zones: string[];
  private readonly rt: Runtime;
  private readonly audit: AuditEmitter;
  private readonly instances: InstanceLifecycle;
  private readonly faults: InstanceFaults;
  private readonly migs: MigController;
  private readonly autoscaling: AutoscalerLoop;
  private readonly groupsApi: GroupsApi;
  private readonly autoscalersApi: AutoscalersApi;
  /** The deploy's resources: templates, unmanaged instances, network, deletions (deploy-routes.ts). */
  readonly deploy: DeployApi;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Injected instance-creation errors and each group's record of them (listErrors). */
  readonly groupErrors: GroupErrors;

  constructor(options: EmulatorOptions) {
    const rt = new Runtime(options);
    const registry = new Registry(rt);
    super(registry, new Operations(rt, registry));
    this.rt = rt;
    this.project = rt.project;
    this.projectNumber = rt.settings.projectNumber;
    this.zones = rt.settings.zones;
    this.audit = new AuditEmitter(rt, options.audit, options.auditFaults);
    const reconcile = (igm: Igm) => this.migs.reconcile(igm);
    this.instances = new InstanceLifecycle(rt, this.registry, this.operations, this.audit, reconcile);
    this.faults = new InstanceFaults(rt, this.registry, this.audit, reconcile);
    this.groupErrors = new GroupErrors(rt.settings.clock);
    this.migs = new MigController(rt, this.registry, this.instances, this.audit, this.groupErrors);
    this.autoscaling = new AutoscalerLoop(rt, this.registry, this.migs, options.metric);
    this.groupsApi = new GroupsApi(rt, this.registry, this.operations, this.migs, this.audit);
    this.autoscalersApi = new AutoscalersApi(rt, this.registry, this.operations, this.autoscaling);
    this.deploy = new DeployApi(rt, this.registry, this.operations, this.instances);
  }

  /** Starts the periodic MIG reconcile and autoscaler loops. */
  start(): void {
    const { reconcileIntervalMs, autoscaleIntervalMs } = this.rt.settings;
    this.timers.push(
      setInterval(() => this.migs.reconcileAll(), reconcileIntervalMs),
      setInterval(() => void this.rt.track(this.autoscaling.runAll()), autoscaleIntervalMs),
    );
  }

  /**
   * Stops the loops and removes every instance: gracefully (shutdown scripts) if asked, else killed
   * first so that work in flight (a delete waiting on a shutdown script) ends at once. Audit entries
   * still queued get a few seconds; nothing is written after stop returns.
   */
  async stop(graceful = false): Promise<void> {
    this.rt.stop();
    for (const t of this.timers) clearInterval(t);
    const { driver, shutdownTimeoutMs } = this.rt.settings;
    const all = () => this.registry.allInstances();
    if (graceful) {
      await this.rt.drain(shutdownTimeoutMs + 5000);
      await Promise.allSettled(all().map((i) => driver.shutdown(i.id, shutdownTimeoutMs)));
    } else {
      await Promise.allSettled(all().map((i) => driver.kill(i.id)));
      await this.rt.drain(10_000);
      // Instances whose boot was in flight came up meanwhile.
      await Promise.allSettled(all().map((i) => driver.kill(i.id)));
    }
    this.registry.clearInstances();
    await this.audit.close(5000);
  }

  // ---- seeding (what deploy scripts create once) ------------------------------------------------

  addTemplate(name: string, properties: TemplateProperties): Template {
    return this.registry.addTemplate(name, properties);
  }

  // ---- instance group managers ------------------------------------------------------------------

  insertIgm(scope: Scope, body: IgmInsert, caller: Caller): Operation {
    return this.groupsApi.insert(scope, body, caller);
  }

  patchIgm(scope: Scope, name: string, body: IgmPatch, caller: Caller): Operation {
    return this.groupsApi.patch(scope, name, body, caller);
  }

  resize(scope: Scope, name: string, size: number, caller: Caller): Operation {
    return this.groupsApi.resize(scope, name, size, caller);
  }

  /**
   * deleteInstances / recreateInstances / abandonInstances: accepted, then the operation fails if an
   * instance is not a member (or is already leaving) unless deleteInstances may skip it.
   */
  actOnInstances(
    scope: Scope,
    name: string,
    action: InstancesAction,
    refs: string[],
    caller: Caller,
    options: { skipInstancesOnValidationError?: boolean } = {},
  ): Operation {
    return this.groupsApi.actOnInstances(scope, name, action, refs, caller, options);
  }

  /** Resolves once no MIG has work in flight and every group has its target size (bounded). */
  settled(timeoutMs: number): Promise<boolean> {
    return this.migs.settled(timeoutMs);
  }

  // ---- autoscalers ------------------------------------------------------------------------------

  insertAutoscaler(scope: Scope, body: AutoscalerInsert, caller: Caller): Operation {
    return this.autoscalersApi.insert(scope, body, caller);
  }

  /** `patch` applies a JSON merge patch to the autoscaler, `update` replaces it; unknown fields are 400s. */
  modifyAutoscaler(
    scope: Scope,
    name: string,
    kind: 'patch' | 'update',
    body: Record<string, unknown>,
    caller: Caller,
  ): Operation {
    return this.autoscalersApi.modify(scope, name, kind, body, caller);
  }

  // ---- instances ----------------------------------------------------------------------------------

  deleteInstance(zone: string, name: string, caller: Caller): Operation {
    return this.instances.delete(zone, name, caller);
  }

  stopInstance(zone: string, name: string, caller: Caller): Operation {
    return this.instances.stop(zone, name, caller);
  }

  /** Emulator control: preemption kills the instance without its shutdown script. */
  preempt(zone: string, name: string): Instance {
    return this.faults.preempt(zone, name);
  }

  /** Emulator control: a host error kills the instance; GCE then restarts it (same id). */
  crash(zone: string, name: string): Instance {
    return this.faults.crash(zone, name);
  }

  /** Emulator control: freezes (or thaws) an instance's processes; GCE still reports it RUNNING. */
  hang(zone: string, name: string, hung: boolean): Promise<Instance> {
    return this.faults.hang(zone, name, hung);
  }
}
