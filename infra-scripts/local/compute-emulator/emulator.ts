import type { Logger } from '../../../shared/logging';
import { type LogEntry, groupActivity, instanceActivity, systemEvent } from './audit-log';
import { type InstanceSignal, type Recommendation, recommend } from './autoscaling';
import type { InstanceDriver, InstanceSpec } from './driver';
import { ApiError, alreadyExists, fingerprintMismatch, invalid, notFound, notReady } from './errors';
import { type IdSource, randomIds } from './ids';
import { planReconcile, type Step } from './mig-plan';
import {
  type Autoscaler,
  type AutoscalingPolicy,
  type Igm,
  type Instance,
  type Operation,
  type Scope,
  type Slot,
  type Template,
  type TemplateProperties,
  igmKey,
  instanceKey,
  lastSegment,
  links,
  parseInstanceRef,
  regionOfZone,
  scopePath,
} from './state';

export interface EmulatorOptions {
  project: string;
  projectNumber?: string;
  /** Zones that exist; regions are derived from them. */
  zones: string[];
  driver: InstanceDriver;
  logger: Logger;
  /** Where audit-log entries go (the Pub/Sub topic a log sink would feed). */
  audit?: (entry: LogEntry) => Promise<void>;
  /** Latest custom-metric value of an instance, for autoscalers (the Monitoring store). */
  metric?: (metricType: string, instanceId: string) => number | undefined;
  ids?: IdSource;
  clock?: () => number;
  /** Instances get addresses `${addressPrefix}N` for N in 2..254. */
  addressPrefix?: string;
  /** GCE gives shutdown scripts 90 s on delete/stop; the sandbox uses less. */
  shutdownTimeoutMs?: number;
  /** Minimum time an operation stays RUNNING, so clients really have to wait. */
  operationDelayMs?: number;
  /** How long `operations.wait` blocks at most (GCE: 2 minutes). */
  waitTimeoutMs?: number;
  reconcileIntervalMs?: number;
  autoscaleIntervalMs?: number;
  /** GCE scales in only to the highest recommendation of the last 10 minutes. */
  stabilizationSec?: number;
  /** Who the audit log says called the API. */
  principalEmail?: string;
  /** How long a crashed instance stays down before its automatic restart (a host error costs a reboot). */
  restartDelayMs?: number;
}

export interface Caller {
  userAgent: string;
}

interface Actor {
  principalEmail: string;
  userAgent: string;
}

export interface EmulatorEvent {
  at: string;
  kind: string;
  message: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for `p` but no longer than `ms`, leaving no timer behind. */
async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * The imperative shell around the pure planners: holds the resources, runs operations
 * asynchronously, carries out MIG steps through the driver, runs the autoscalers and writes audit logs.
 */
export class ComputeEmulator {
  readonly project: string;
  readonly projectNumber: string;
  readonly zones: string[];
  private readonly opts: Required<Omit<EmulatorOptions, 'audit' | 'metric' | 'projectNumber'>>;
  private readonly templates = new Map<string, Template>();
  private readonly instances = new Map<string, Instance>();
  private readonly igms = new Map<string, Igm>();
  private readonly autoscalers = new Map<string, Autoscaler>();
  private readonly operations = new Map<string, Operation>();
  private readonly opDone = new Map<string, Promise<void>>();
  private readonly history = new Map<string, Recommendation[]>();
  private readonly freeAddresses: string[] = [];
  private readonly jobs = new Set<Promise<void>>();
  private readonly events: EmulatorEvent[] = [];
  private auditChain: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private requestStop: () => void = () => undefined;
  /** Resolves when stop() begins, so waits (a crashed instance's reboot) end early. */
  private readonly stopRequested = new Promise<void>((resolve) => (this.requestStop = resolve));
  private closed = false;
  private readonly migActor: Actor;

  constructor(private readonly options: EmulatorOptions) {
    this.project = options.project;
    this.projectNumber = options.projectNumber ?? '123456789012';
    this.zones = options.zones;
    this.opts = {
      project: options.project,
      zones: options.zones,
      driver: options.driver,
      logger: options.logger,
      ids: options.ids ?? randomIds,
      clock: options.clock ?? Date.now,
      addressPrefix: options.addressPrefix ?? '127.10.0.',
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 90_000,
      operationDelayMs: options.operationDelayMs ?? 100,
      waitTimeoutMs: options.waitTimeoutMs ?? 120_000,
      reconcileIntervalMs: options.reconcileIntervalMs ?? 2000,
      autoscaleIntervalMs: options.autoscaleIntervalMs ?? 5000,
      stabilizationSec: options.stabilizationSec ?? 600,
      principalEmail: options.principalEmail ?? `operator@${options.project}.iam.gserviceaccount.com`,
      restartDelayMs: options.restartDelayMs ?? 10_000,
    };
    for (let n = 2; n <= 254; n++) this.freeAddresses.push(`${this.opts.addressPrefix}${n}`);
    this.migActor = {
      principalEmail: `${this.projectNumber}@cloudservices.gserviceaccount.com`,
      userAgent: 'GCE Managed Instance Group',
    };
  }

  /** Starts the periodic MIG reconcile and autoscaler loops. */
  start(): void {
    this.timers.push(
      setInterval(() => {
        for (const igm of this.igms.values()) this.reconcile(igm);
      }, this.opts.reconcileIntervalMs),
      setInterval(() => void this.track(this.autoscaleAll()), this.opts.autoscaleIntervalMs),
    );
  }

  /**
   * Stops the loops and removes every instance: gracefully (shutdown scripts) if asked, else killed
   * first so that work in flight (a delete waiting on a shutdown script) ends at once. Audit entries
   * still queued get a few seconds; nothing is written after stop returns.
   */
  async stop(graceful = false): Promise<void> {
    this.stopped = true;
    this.requestStop();
    for (const t of this.timers) clearInterval(t);
    const all = () => [...this.instances.values()];
    if (graceful) {
      await bounded(Promise.allSettled([...this.jobs]), this.opts.shutdownTimeoutMs + 5000);
      await Promise.allSettled(
        all().map((i) => this.opts.driver.shutdown(i.id, this.opts.shutdownTimeoutMs)),
      );
    } else {
      await Promise.allSettled(all().map((i) => this.opts.driver.kill(i.id)));
      await bounded(Promise.allSettled([...this.jobs]), 10_000);
      // Instances whose boot was in flight came up meanwhile.
      await Promise.allSettled(all().map((i) => this.opts.driver.kill(i.id)));
    }
    this.instances.clear();
    await bounded(this.auditChain, 5000);
    this.closed = true;
  }

  // ---- seeding (what deploy scripts create once) ------------------------------------------------

  addTemplate(name: string, properties: TemplateProperties): Template {
    if (this.templates.has(name))
      throw alreadyExists(`projects/${this.project}/global/instanceTemplates/${name}`);
    const t: Template = { id: this.opts.ids.numericId(), name, creationTimestamp: this.iso(), properties };
    this.templates.set(name, t);
    return t;
  }

  getTemplate(name: string): Template {
    const t = this.templates.get(name);
    if (!t) throw notFound(`projects/${this.project}/global/instanceTemplates/${name}`);
    return t;
  }

  listTemplates(): Template[] {
    return [...this.templates.values()];
  }

  // ---- instance group managers ------------------------------------------------------------------

  insertIgm(
    scope: Scope,
    body: {
      name: string;
      baseInstanceName?: string;
      instanceTemplate: string;
      targetSize: number;
      description?: string;
      zones?: string[];
    },
    caller: Caller,
  ): Operation {
    this.checkScope(scope);
    const key = igmKey(scope, body.name);
    if (this.igms.has(key))
      throw alreadyExists(`${scopePath(this.project, scope)}/instanceGroupManagers/${body.name}`);
    const template = this.getTemplate(lastSegment(body.instanceTemplate));
    const zones =
      scope.kind === 'zones'
        ? [scope.name]
        : (body.zones ?? this.zones.filter((z) => regionOfZone(z) === scope.name)).map(lastSegment);
    for (const z of zones) {
      if (!this.zones.includes(z) || (scope.kind === 'regions' && regionOfZone(z) !== scope.name))
        throw invalid(`Invalid value for field 'resource.distributionPolicy.zones': '${z}'.`);
    }
    const igm: Igm = {
      id: this.opts.ids.numericId(),
      name: body.name,
      scope,
      description: body.description ?? '',
      baseInstanceName: body.baseInstanceName ?? body.name,
      instanceTemplate: links.template(this.project, template.name),
      targetSize: body.targetSize,
      fingerprint: this.fingerprint(),
      creationTimestamp: this.iso(),
      zones,
      slots: [],
    };
    this.igms.set(key, igm);
    return this.operation(
      scope,
      'insert',
      links.igm(this.project, scope, igm.name),
      igm.id,
      this.apiActor(caller),
      () => Promise.resolve(this.reconcile(igm)),
    );
  }

  getIgm(scope: Scope, name: string): Igm {
    this.checkScope(scope);
    const igm = this.igms.get(igmKey(scope, name));
    if (!igm) throw notFound(`${scopePath(this.project, scope)}/instanceGroupManagers/${name}`);
    return igm;
  }

  listIgms(scope: Scope): Igm[] {
    this.checkScope(scope);
    return [...this.igms.values()].filter((g) => g.scope.kind === scope.kind && g.scope.name === scope.name);
  }

  managedInstances(igm: Igm): { slot: Slot; instance: Instance | undefined }[] {
    return igm.slots.map((slot) => ({ slot, instance: this.instanceOfSlot(slot) }));
  }

  patchIgm(
    scope: Scope,
    name: string,
    body: { fingerprint?: string; description?: string; instanceTemplate?: string },
    caller: Caller,
  ): Operation {
    const igm = this.getIgm(scope, name);
    if (body.fingerprint !== undefined && body.fingerprint !== igm.fingerprint) throw fingerprintMismatch();
    const template =
      body.instanceTemplate === undefined ? undefined : this.getTemplate(lastSegment(body.instanceTemplate));
    if (body.description !== undefined) igm.description = body.description;
    if (template) igm.instanceTemplate = links.template(this.project, template.name);
    igm.fingerprint = this.fingerprint();
    return this.igmOperation(igm, 'patch', caller);
  }

  resize(scope: Scope, name: string, size: number, caller: Caller): Operation {
    const igm = this.getIgm(scope, name);
    if (!Number.isInteger(size) || size < 0 || size > 1000)
      throw invalid(`Invalid value for field 'size': '${size}'. Must be between 0 and 1000.`);
    igm.targetSize = size;
    igm.fingerprint = this.fingerprint();
    this.record('resize', `${igm.name}: target size ${size}`);
    return this.igmOperation(igm, 'compute.instanceGroupManagers.resize', caller);
  }

  /** deleteInstances / recreateInstances / abandonInstances: all names must belong to the group. */
  actOnInstances(
    scope: Scope,
    name: string,
    action: 'deleteInstances' | 'recreateInstances' | 'abandonInstances',
    refs: string[],
    caller: Caller,
  ): Operation {
    const igm = this.getIgm(scope, name);
    if (refs.length === 0) throw new ApiError(400, 'required', "Required field 'instances' not specified");
    const slots = refs.map((ref) => {
      const { zone, name: instanceName } = parseInstanceRef(ref);
      const slot = igm.slots.find((s) => s.name === instanceName && (zone === undefined || s.zone === zone));
      if (!slot || slot.want === 'delete' || slot.want === 'abandon')
        throw invalid(`The instance '${ref}' is not a member of the instance group '${igm.name}'.`);
      return slot;
    });
    const want = (
      { deleteInstances: 'delete', recreateInstances: 'recreate', abandonInstances: 'abandon' } as const
    )[action];
    for (const s of slots) s.want = want;
    if (want !== 'recreate') igm.targetSize = Math.max(0, igm.targetSize - slots.length);
    igm.fingerprint = this.fingerprint();
    const method = `v1.compute.${scope.kind === 'zones' ? 'instanceGroupManagers' : 'regionInstanceGroupManagers'}.${action}`;
    const op = this.igmOperation(igm, `compute.instanceGroupManagers.${action}`, caller);
    const instances = slots.map((s) => links.instance(this.project, s.zone, s.name));
    const actor = this.apiActor(caller);
    for (const phase of ['first', 'last'] as const) {
      this.emit(
        groupActivity({
          project: this.project,
          at: new Date(this.opts.clock()),
          insertId: this.opts.ids.suffix(12),
          methodName: method,
          phase,
          ...actor,
          operation: { id: op.id, name: op.name, operationType: op.operationType, targetId: igm.id },
          scope,
          igmName: igm.name,
          igmId: igm.id,
          request: { instances },
        }),
      );
    }
    this.record(action, `${igm.name}: ${slots.map((s) => s.name).join(', ')}`);
    return op;
  }

  // ---- autoscalers ------------------------------------------------------------------------------

  insertAutoscaler(
    scope: Scope,
    body: { name: string; target: string; description?: string; autoscalingPolicy: AutoscalingPolicy },
    caller: Caller,
  ): Operation {
    this.checkScope(scope);
    const key = igmKey(scope, body.name);
    if (this.autoscalers.has(key))
      throw alreadyExists(`${scopePath(this.project, scope)}/autoscalers/${body.name}`);
    const igm = this.getIgm(scope, lastSegment(body.target));
    if (igm.autoscaler) throw invalid(`The instance group manager '${igm.name}' already has an autoscaler.`);
    checkPolicy(body.autoscalingPolicy);
    const a: Autoscaler = {
      id: this.opts.ids.numericId(),
      name: body.name,
      scope,
      description: body.description ?? '',
      target: links.igm(this.project, scope, igm.name),
      policy: body.autoscalingPolicy,
      creationTimestamp: this.iso(),
      statusDetails: [],
    };
    this.autoscalers.set(key, a);
    igm.autoscaler = links.autoscaler(this.project, scope, a.name);
    return this.operation(scope, 'insert', igm.autoscaler, a.id, this.apiActor(caller), () =>
      Promise.resolve(),
    );
  }

  getAutoscaler(scope: Scope, name: string): Autoscaler {
    this.checkScope(scope);
    const a = this.autoscalers.get(igmKey(scope, name));
    if (!a) throw notFound(`${scopePath(this.project, scope)}/autoscalers/${name}`);
    return a;
  }

  listAutoscalers(scope: Scope): Autoscaler[] {
    this.checkScope(scope);
    return [...this.autoscalers.values()].filter(
      (a) => a.scope.kind === scope.kind && a.scope.name === scope.name,
    );
  }

  /**
   * `patch` merges `policy` into the current one, `update` replaces it. Compute v1 autoscalers carry
   * no fingerprint; like GCE, a modification while the previous one still runs is refused.
   */
  modifyAutoscaler(
    scope: Scope,
    name: string,
    kind: 'patch' | 'update',
    body: { description?: string; target?: string; autoscalingPolicy?: Partial<AutoscalingPolicy> },
    caller: Caller,
  ): Operation {
    const a = this.getAutoscaler(scope, name);
    if (a.pendingOperation && this.operations.get(a.pendingOperation)?.status !== 'DONE')
      throw notReady(`${scopePath(this.project, scope)}/autoscalers/${name}`);
    if (body.target !== undefined && lastSegment(body.target) !== lastSegment(a.target))
      throw invalid(
        `Invalid value for field 'resource.target': '${body.target}'. The target cannot be changed.`,
      );
    const policy: AutoscalingPolicy =
      kind === 'patch'
        ? { ...a.policy, ...body.autoscalingPolicy }
        : {
            minNumReplicas: 1,
            coolDownPeriodSec: 60,
            mode: 'ON',
            customMetricUtilizations: [],
            maxNumReplicas: 0,
            ...body.autoscalingPolicy,
          };
    checkPolicy(policy);
    a.policy = policy;
    if (body.description !== undefined || kind === 'update') a.description = body.description ?? '';
    this.record('autoscaler', `${a.name}: policy ${kind} ${JSON.stringify(body.autoscalingPolicy ?? {})}`);
    const op = this.operation(
      scope,
      kind,
      links.autoscaler(this.project, scope, a.name),
      a.id,
      this.apiActor(caller),
      () => this.autoscaleOne(a),
    );
    a.pendingOperation = op.name;
    return op;
  }

  // ---- instances ----------------------------------------------------------------------------------

  getInstance(zone: string, name: string): Instance {
    this.checkScope({ kind: 'zones', name: zone });
    const i = this.instances.get(instanceKey(zone, name));
    if (!i) throw notFound(`projects/${this.project}/zones/${zone}/instances/${name}`);
    return i;
  }

  listInstances(zone: string): Instance[] {
    this.checkScope({ kind: 'zones', name: zone });
    return [...this.instances.values()].filter((i) => i.zone === zone);
  }

  allInstances(): Instance[] {
    return [...this.instances.values()];
  }

  deleteInstance(zone: string, name: string, caller: Caller): Operation {
    const inst = this.getInstance(zone, name);
    if (inst.busy) throw notReady(`projects/${this.project}/zones/${zone}/instances/${name}`);
    inst.busy = true;
    const actor = this.apiActor(caller);
    return this.operation(
      { kind: 'zones', name: zone },
      'delete',
      links.instance(this.project, zone, name),
      inst.id,
      actor,
      (op) => this.removeInstance(inst, actor, op),
    );
  }

  stopInstance(zone: string, name: string, caller: Caller): Operation {
    const inst = this.getInstance(zone, name);
    if (inst.busy) throw notReady(`projects/${this.project}/zones/${zone}/instances/${name}`);
    inst.busy = true;
    const actor = this.apiActor(caller);
    return this.operation(
      { kind: 'zones', name: zone },
      'stop',
      links.instance(this.project, zone, name),
      inst.id,
      actor,
      async (op) => {
        this.instanceAudit(inst, 'v1.compute.instances.stop', 'first', actor, op);
        inst.status = 'STOPPING';
        await this.opts.driver.shutdown(inst.id, this.opts.shutdownTimeoutMs);
        inst.status = 'TERMINATED';
        inst.hung = false;
        inst.busy = false;
        this.instanceAudit(inst, 'v1.compute.instances.stop', 'last', actor, op);
      },
    );
  }

  /** Emulator control: preemption kills the instance without its shutdown script. */
  preempt(zone: string, name: string): Instance {
    return this.terminate(zone, name, 'compute.instances.preempted', 'Instance was preempted.', false);
  }

  /** Emulator control: a host error kills the instance; GCE then restarts it (same id). */
  crash(zone: string, name: string): Instance {
    return this.terminate(
      zone,
      name,
      'compute.instances.hostError',
      'Instance terminated by Compute Engine.',
      true,
    );
  }

  /** Emulator control: freezes (or thaws) an instance's processes; GCE still reports it RUNNING. */
  async hang(zone: string, name: string, hung: boolean): Promise<Instance> {
    const inst = this.getInstance(zone, name);
    if (inst.status !== 'RUNNING' || inst.busy)
      throw notReady(`projects/${this.project}/zones/${zone}/instances/${name}`);
    await this.opts.driver.freeze(inst.id, hung);
    inst.hung = hung;
    this.record(hung ? 'hang' : 'unhang', inst.name);
    return inst;
  }

  // ---- operations ---------------------------------------------------------------------------------

  getOperation(scope: Scope, name: string): Operation {
    this.checkScope(scope);
    const op = this.operations.get(name);
    if (!op || op.scope.kind !== scope.kind || op.scope.name !== scope.name)
      throw notFound(`${scopePath(this.project, scope)}/operations/${name}`);
    return op;
  }

  /** Blocks until the operation is DONE or the wait limit passes, then returns it either way. */
  async waitOperation(scope: Scope, name: string): Promise<Operation> {
    const op = this.getOperation(scope, name);
    const done = this.opDone.get(name);
    if (op.status !== 'DONE' && done) await bounded(done, this.opts.waitTimeoutMs);
    return op;
  }

  listOperations(scope: Scope): Operation[] {
    this.checkScope(scope);
    return [...this.operations.values()].filter(
      (o) => o.scope.kind === scope.kind && o.scope.name === scope.name,
    );
  }

  /** Recent lifecycle events and decisions, newest last, for the status page. */
  recentEvents(): EmulatorEvent[] {
    return [...this.events];
  }

  allIgms(): Igm[] {
    return [...this.igms.values()];
  }

  allAutoscalers(): Autoscaler[] {
    return [...this.autoscalers.values()];
  }

  /** Resolves once no MIG has work in flight and every group has its target size (bounded). */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = this.opts.clock() + timeoutMs;
    while (this.opts.clock() < deadline) {
      const stable = [...this.igms.values()].every(
        (g) =>
          g.slots.length === g.targetSize &&
          g.slots.every((s) => s.action === 'NONE' && this.instanceOfSlot(s)?.status === 'RUNNING'),
      );
      if (stable) return true;
      await sleep(50);
    }
    return false;
  }

  // ---- internals ----------------------------------------------------------------------------------

  private reconcile(igm: Igm): void {
    if (this.stopped || !this.igms.has(igmKey(igm.scope, igm.name))) return;
    const plan = planReconcile(
      igm,
      (s) => this.instanceOfSlot(s),
      () => `${igm.baseInstanceName}-${this.opts.ids.suffix(4)}`,
    );
    igm.slots.push(...plan.add);
    for (const step of plan.steps) {
      const slot = igm.slots.find((s) => s.name === step.name && s.zone === step.zone);
      if (!slot || slot.action !== 'NONE') continue;
      // A scale-in victim stops counting toward the target size at once, not when it is gone.
      if (step.kind === 'delete') slot.want = 'delete';
      slot.action = (
        { create: 'CREATING', delete: 'DELETING', recreate: 'RECREATING', abandon: 'ABANDONING' } as const
      )[step.kind];
      this.track(
        this.runStep(igm, slot, step)
          .catch((err: unknown) => {
            this.opts.logger.error(
              { err, igm: igm.name, step },
              'managed instance action failed; will retry',
            );
          })
          .finally(() => {
            slot.action = 'NONE';
            if (!this.stopped) setImmediate(() => this.reconcile(igm));
          }),
      );
    }
  }

  private async runStep(igm: Igm, slot: Slot, step: Step): Promise<void> {
    const existing = this.instanceOfSlot(slot);
    switch (step.kind) {
      case 'create':
        this.record('create', `${igm.name}: ${slot.name} (${step.reason})`);
        await this.createManaged(igm, slot);
        return;
      case 'delete':
        this.record('delete', `${igm.name}: ${slot.name} (${step.reason})`);
        if (existing) await this.removeInstance(existing, this.migActor);
        igm.slots = igm.slots.filter((s) => s !== slot);
        return;
      case 'abandon':
        if (existing) existing.igm = undefined;
        igm.slots = igm.slots.filter((s) => s !== slot);
        return;
      case 'recreate':
        this.record('recreate', `${igm.name}: ${slot.name} (${step.reason})`);
        if (existing && step.reason === 'repair') {
          this.emitSystemEvent(
            existing,
            'compute.instances.repair.recreateInstance',
            'Instance Group Manager recreated the instance.',
          );
        }
        if (existing) {
          existing.busy = true;
          await this.removeInstance(existing, this.migActor);
        }
        slot.want = 'keep';
        await this.createManaged(igm, slot);
        return;
    }
  }

  private async createManaged(igm: Igm, slot: Slot): Promise<void> {
    const template = this.getTemplate(lastSegment(igm.instanceTemplate));
    const ip = this.freeAddresses.shift();
    if (!ip) throw new Error('no free instance address left');
    const createdBy = `projects/${this.projectNumber}/${igm.scope.kind}/${igm.scope.name}/instanceGroupManagers/${igm.name}`;
    const metadata = [
      ...(template.properties.metadata?.items ?? []).map((m) => ({ key: m.key, value: m.value ?? '' })),
      {
        key: 'instance-template',
        value: `projects/${this.projectNumber}/global/instanceTemplates/${template.name}`,
      },
      { key: 'created-by', value: createdBy },
    ];
    const inst: Instance = {
      id: this.opts.ids.numericId(),
      name: slot.name,
      zone: slot.zone,
      status: 'PROVISIONING',
      creationTimestamp: this.iso(),
      networkIP: ip,
      metadata,
      labels: template.properties.labels ?? {},
      tags: template.properties.tags?.items ?? [],
      machineType: template.properties.machineType ?? 'e2-small',
      templateName: template.name,
      igm: igmKey(igm.scope, igm.name),
      hung: false,
      busy: true,
    };
    this.instances.set(instanceKey(inst.zone, inst.name), inst);
    slot.instanceId = inst.id;
    const zone: Scope = { kind: 'zones', name: inst.zone };
    const op = this.internalOperation(
      zone,
      'insert',
      links.instance(this.project, inst.zone, inst.name),
      inst.id,
    );
    this.instanceAudit(inst, 'v1.compute.instances.insert', 'first', this.migActor, op);
    try {
      inst.status = 'STAGING';
      await this.opts.driver.create(this.specOf(inst));
    } catch (err) {
      this.instances.delete(instanceKey(inst.zone, inst.name));
      this.freeAddresses.push(ip);
      this.finish(op, err);
      throw err;
    }
    inst.status = 'RUNNING';
    inst.busy = false;
    this.instanceAudit(inst, 'v1.compute.instances.insert', 'last', this.migActor, op);
    this.finish(op);
  }

  /** Deletes an instance as GCE does: shutdown script within the timeout, then gone. */
  private async removeInstance(inst: Instance, actor: Actor, apiOp?: Operation): Promise<void> {
    const op =
      apiOp ??
      this.internalOperation(
        { kind: 'zones', name: inst.zone },
        'delete',
        links.instance(this.project, inst.zone, inst.name),
        inst.id,
      );
    this.instanceAudit(inst, 'v1.compute.instances.delete', 'first', actor, op);
    inst.status = 'STOPPING';
    if (inst.hung) await this.opts.driver.kill(inst.id);
    else await this.opts.driver.shutdown(inst.id, this.opts.shutdownTimeoutMs);
    if (this.instances.get(instanceKey(inst.zone, inst.name)) === inst)
      this.instances.delete(instanceKey(inst.zone, inst.name));
    this.freeAddresses.push(inst.networkIP);
    this.instanceAudit(inst, 'v1.compute.instances.delete', 'last', actor, op);
    if (!apiOp) this.finish(op);
    this.record('deleted', `${inst.name} (${inst.id})`);
    const igm = inst.igm ? this.igms.get(inst.igm) : undefined;
    if (igm && !this.stopped) setImmediate(() => this.reconcile(igm));
  }

  private terminate(zone: string, name: string, method: string, message: string, restart: boolean): Instance {
    const inst = this.getInstance(zone, name);
    if (inst.status !== 'RUNNING' || inst.busy)
      throw notReady(`projects/${this.project}/zones/${zone}/instances/${name}`);
    inst.busy = true;
    this.track(
      (async () => {
        await this.opts.driver.kill(inst.id);
        inst.status = 'TERMINATED';
        inst.hung = false;
        this.emitSystemEvent(inst, method, message);
        this.record(method.split('.').pop()!, `${inst.name} (${inst.id})`);
        if (restart) await bounded(this.stopRequested, this.opts.restartDelayMs);
        if (restart && !this.stopped) {
          inst.status = 'STAGING';
          await this.opts.driver.create(this.specOf(inst));
          inst.status = 'RUNNING';
        }
      })()
        .catch((err: unknown) => {
          inst.status = 'TERMINATED';
          this.opts.logger.error({ err, instance: inst.name }, 'terminate/restart failed');
        })
        .finally(() => {
          inst.busy = false;
          const igm = inst.igm ? this.igms.get(inst.igm) : undefined;
          if (igm && !this.stopped) this.reconcile(igm);
        }),
    );
    return inst;
  }

  private async autoscaleAll(): Promise<void> {
    for (const a of this.autoscalers.values()) await this.autoscaleOne(a);
  }

  private async autoscaleOne(a: Autoscaler): Promise<void> {
    const igm = this.igms.get(igmKey(a.scope, lastSegment(a.target)));
    if (!igm || this.stopped) return;
    const now = this.opts.clock();
    const signals: InstanceSignal[] = [];
    for (const { instance } of this.managedInstances(igm)) {
      if (!instance || instance.status !== 'RUNNING') continue;
      const metrics: Record<string, number | undefined> = {};
      for (const m of a.policy.customMetricUtilizations)
        metrics[m.metric] = this.options.metric?.(m.metric, instance.id);
      signals.push({
        ageSec: (now - Date.parse(instance.creationTimestamp)) / 1000,
        cpu: a.policy.cpuUtilization ? await this.opts.driver.cpu?.(instance.id) : undefined,
        metrics,
      });
    }
    const key = igmKey(a.scope, a.name);
    const windowMs = Math.max(this.opts.stabilizationSec, a.policy.scaleInControl?.timeWindowSec ?? 0) * 1000;
    const history = (this.history.get(key) ?? []).filter((r) => now - r.at <= windowMs);
    const decision = recommend({
      policy: a.policy,
      targetSize: igm.targetSize,
      signals,
      history,
      now,
      stabilizationSec: this.opts.stabilizationSec,
    });
    history.push({ at: now, raw: decision.raw, size: decision.recommendedSize });
    this.history.set(key, history);
    a.recommendedSize = decision.recommendedSize;
    a.statusDetails = decision.details;
    if (decision.recommendedSize !== igm.targetSize) {
      this.record('autoscale', `${a.name}: ${igm.name} ${igm.targetSize} -> ${decision.recommendedSize}`);
      this.opts.logger.info(
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
      this.reconcile(igm);
    }
  }

  private operation(
    scope: Scope,
    operationType: string,
    targetLink: string,
    targetId: string,
    actor: Actor,
    work: (op: Operation) => Promise<void>,
  ): Operation {
    const op = this.internalOperation(scope, operationType, targetLink, targetId, actor.principalEmail);
    const done = (async () => {
      await sleep(this.opts.operationDelayMs);
      try {
        await work(op);
        this.finish(op);
      } catch (err) {
        this.finish(op, err);
      }
    })();
    this.opDone.set(op.name, done);
    this.track(done);
    return op;
  }

  private igmOperation(igm: Igm, operationType: string, caller: Caller): Operation {
    return this.operation(
      igm.scope,
      operationType,
      links.igm(this.project, igm.scope, igm.name),
      igm.id,
      this.apiActor(caller),
      () => Promise.resolve(this.reconcile(igm)),
    );
  }

  private internalOperation(
    scope: Scope,
    operationType: string,
    targetLink: string,
    targetId: string,
    user?: string,
  ): Operation {
    const now = this.iso();
    const ids = this.opts.ids;
    const op: Operation = {
      id: ids.numericId(),
      name: `operation-${this.opts.clock()}-${ids.hex(13)}-${ids.hex(8)}-${ids.hex(8)}`,
      scope,
      operationType,
      targetLink,
      targetId,
      status: 'RUNNING',
      progress: 0,
      user: user ?? this.migActor.principalEmail,
      insertTime: now,
      startTime: now,
    };
    this.operations.set(op.name, op);
    this.pruneOperations();
    return op;
  }

  private finish(op: Operation, err?: unknown): void {
    if (op.status === 'DONE') return;
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = this.iso();
    if (err !== undefined) {
      const apiErr = err instanceof ApiError ? err : undefined;
      op.errors = [
        {
          code: apiErr?.reason.toUpperCase() ?? 'INTERNAL_ERROR',
          message: err instanceof Error ? err.message : String(err),
        },
      ];
      op.httpErrorStatusCode = apiErr?.code ?? 500;
      op.httpErrorMessage = apiErr ? 'BAD REQUEST' : 'INTERNAL SERVER ERROR';
      this.opts.logger.warn({ operation: op.name, err }, 'operation failed');
    }
  }

  // Finished operations are kept for a while as GCE does, but not without bound.
  private pruneOperations(): void {
    if (this.operations.size <= 5000) return;
    for (const [name, op] of this.operations) {
      if (this.operations.size <= 4000) break;
      if (op.status === 'DONE') {
        this.operations.delete(name);
        this.opDone.delete(name);
      }
    }
  }

  private instanceAudit(
    inst: Instance,
    methodName: string,
    phase: 'first' | 'last',
    actor: Actor,
    op: Operation,
  ): void {
    this.emit(
      instanceActivity({
        project: this.project,
        at: new Date(this.opts.clock()),
        insertId: this.opts.ids.suffix(12),
        methodName,
        phase,
        ...actor,
        operation: { id: op.id, name: op.name, operationType: op.operationType, targetId: inst.id },
        zone: inst.zone,
        instanceName: inst.name,
        instanceId: inst.id,
      }),
    );
  }

  private emitSystemEvent(inst: Instance, methodName: string, message: string): void {
    this.emit(
      systemEvent({
        project: this.project,
        at: new Date(this.opts.clock()),
        insertId: this.opts.ids.suffix(12),
        zone: inst.zone,
        instanceName: inst.name,
        instanceId: inst.id,
        methodName,
        operationId: `systemevent-${this.opts.clock()}-${this.opts.ids.hex(13)}`,
        message,
      }),
    );
  }

  // Entries are written in order, one at a time, as a sink forwards a log; failures are logged.
  private emit(entry: LogEntry): void {
    const write = this.options.audit;
    if (!write || this.closed) return;
    this.auditChain = this.auditChain.then(() =>
      this.closed
        ? undefined
        : write(entry).catch((err: unknown) => {
            if (!this.closed) this.opts.logger.error({ err }, 'audit log entry not delivered');
          }),
    );
  }

  private record(kind: string, message: string): void {
    this.events.push({ at: this.iso(), kind, message });
    if (this.events.length > 200) this.events.splice(0, this.events.length - 200);
  }

  private track(p: Promise<void>): void {
    this.jobs.add(p);
    void p.finally(() => this.jobs.delete(p));
  }

  private instanceOfSlot(slot: Slot): Instance | undefined {
    const i = this.instances.get(instanceKey(slot.zone, slot.name));
    return i && i.id === slot.instanceId ? i : undefined;
  }

  private specOf(inst: Instance): InstanceSpec {
    return {
      project: this.project,
      projectNumber: this.projectNumber,
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

  private apiActor(caller: Caller): Actor {
    return { principalEmail: this.opts.principalEmail, userAgent: caller.userAgent };
  }

  private checkScope(scope: Scope): void {
    const known =
      scope.kind === 'zones'
        ? this.zones.includes(scope.name)
        : this.zones.some((z) => regionOfZone(z) === scope.name);
    if (!known) throw notFound(`projects/${this.project}/${scope.kind}/${scope.name}`);
  }

  private fingerprint(): string {
    return Buffer.from(this.opts.ids.hex(16), 'hex').toString('base64');
  }

  private iso(): string {
    return new Date(this.opts.clock()).toISOString();
  }
}

function checkPolicy(p: AutoscalingPolicy): void {
  if (p.maxNumReplicas < 1)
    throw invalid("Invalid value for field 'resource.autoscalingPolicy.maxNumReplicas': must be at least 1.");
  if (p.minNumReplicas > p.maxNumReplicas)
    throw invalid(
      `Invalid value for field 'resource.autoscalingPolicy.minNumReplicas': '${p.minNumReplicas}'. Must be at most maxNumReplicas (${p.maxNumReplicas}).`,
    );
  const target = p.cpuUtilization?.utilizationTarget;
  if (target !== undefined && (target <= 0 || target > 1))
    throw invalid(
      `Invalid value for field 'resource.autoscalingPolicy.cpuUtilization.utilizationTarget': '${target}'.`,
    );
}
