import type { AuditEmitter } from './audit';
import type { GroupErrors } from './group-errors';
import type { InstanceLifecycle } from './instances';
import { planReconcile, type Step } from './mig-plan';
import type { Registry } from './registry';
import { type Runtime, sleep } from './runtime';
import { type Igm, type Instance, igmKey, lastSegment, links, type Slot, type Template } from './state';

const slotAction = {
  create: 'CREATING',
  delete: 'DELETING',
  recreate: 'RECREATING',
  abandon: 'ABANDONING',
} as const;

/**
 * Carries out the MIG plans (mig-plan.ts): reconciles a group to its target size and per-name wishes
 * (delete, recreate, abandon), one action per name at a time, and reconciles again when one ends.
 */
export class MigController {
  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly instances: InstanceLifecycle,
    private readonly audit: AuditEmitter,
    private readonly errors: GroupErrors,
  ) {}

  reconcileAll(): void {
    for (const igm of this.registry.allIgms()) this.reconcile(igm);
  }

  /** Level-triggered: safe to call at any time; names with an action in flight are left alone. */
  reconcile(igm: Igm): void {
    if (this.rt.stopped || !this.registry.findIgm(igm.scope, igm.name)) return;
    const plan = planReconcile(
      igm,
      (s) => this.registry.instanceOfSlot(s),
      () => `${igm.baseInstanceName}-${this.rt.settings.ids.suffix(4)}`,
    );
    igm.slots.push(...plan.add);
    for (const step of plan.steps) {
      const slot = igm.slots.find((s) => s.name === step.name && s.zone === step.zone);
      if (!slot || slot.action !== 'NONE') continue;
      // A scale-in victim stops counting toward the target size at once, not when it is gone.
      if (step.kind === 'delete') slot.want = 'delete';
      slot.action = slotAction[step.kind];
      this.rt.track(
        this.runStep(igm, slot, step)
          .catch((err: unknown) => {
            this.rt.settings.logger.error(
              { err, igm: igm.name, step },
              'managed instance action failed; will retry',
            );
          })
          .finally(() => {
            slot.action = 'NONE';
            if (!this.rt.stopped) setImmediate(() => this.reconcile(igm));
          }),
      );
    }
  }

  /** Resolves once no MIG has work in flight and every group has its target size (bounded). */
  async settled(timeoutMs: number): Promise<boolean> {
    const clock = this.rt.settings.clock;
    const deadline = clock() + timeoutMs;
    while (clock() < deadline) {
      const stable = this.registry
        .allIgms()
        .every(
          (g) =>
            g.slots.length === g.targetSize &&
            g.slots.every(
              (s) => s.action === 'NONE' && this.registry.instanceOfSlot(s)?.status === 'RUNNING',
            ),
        );
      if (stable) return true;
      await sleep(50);
    }
    return false;
  }

  private async runStep(igm: Igm, slot: Slot, step: Step): Promise<void> {
    const existing = this.registry.instanceOfSlot(slot);
    const migActor = this.rt.migActor;
    switch (step.kind) {
      case 'create':
        this.registry.events.record('create', `${igm.name}: ${slot.name} (${step.reason})`);
        // A member that went missing (deleted behind the group's back) is repaired like a failed one.
        if (step.reason === 'repair' && slot.instanceId)
          this.audit.system(
            { zone: slot.zone, name: slot.name, id: slot.instanceId },
            'compute.instances.repair.recreateInstance',
            'Instance Group Manager recreated the instance.',
          );
        await this.createManaged(igm, slot);
        return;
      case 'delete':
        this.registry.events.record('delete', `${igm.name}: ${slot.name} (${step.reason})`);
        if (existing) await this.instances.remove(existing, migActor);
        igm.slots = igm.slots.filter((s) => s !== slot);
        return;
      case 'abandon':
        if (existing) existing.igm = undefined;
        igm.slots = igm.slots.filter((s) => s !== slot);
        return;
      case 'recreate':
        this.registry.events.record('recreate', `${igm.name}: ${slot.name} (${step.reason})`);
        if (existing && step.reason === 'repair') {
          this.audit.system(
            existing,
            'compute.instances.repair.recreateInstance',
            'Instance Group Manager recreated the instance.',
          );
        }
        if (existing) {
          existing.busy = true;
          await this.instances.remove(existing, migActor);
        }
        slot.want = 'keep';
        await this.createManaged(igm, slot);
        return;
    }
  }

  /** Boots a new instance (new id) for the slot from the group's current template. */
  private async createManaged(igm: Igm, slot: Slot): Promise<void> {
    await this.untilCreationAllowed(igm, slot);
    const template = this.registry.getTemplate(lastSegment(igm.instanceTemplate));
    const ip = this.registry.addresses.take();
    if (!ip) throw new Error('no free instance address left');
    const inst = this.instanceFor(igm, slot, template, ip);
    slot.instanceId = inst.id;
    await this.instances.boot(inst, this.rt.migActor);
  }

  /**
   * While an injected error holds (quota, stock-out), GCE records it in the group's errors and
   * retries the creation: the name stays CREATING and no instance exists meanwhile.
   */
  private async untilCreationAllowed(igm: Igm, slot: Slot): Promise<void> {
    const key = igmKey(igm.scope, igm.name);
    const instance = links.instance(this.rt.settings.project, slot.zone, slot.name);
    for (let f = this.errors.failure(key); f; f = this.errors.failure(key)) {
      this.errors.record(key, instance, f);
      if (this.rt.stopped) throw new Error(`${igm.name}: creation of ${slot.name} stopped`);
      await sleep(Math.max(this.rt.settings.reconcileIntervalMs, 100));
    }
  }

  private instanceFor(igm: Igm, slot: Slot, template: Template, ip: string): Instance {
    const projectNumber = this.rt.settings.projectNumber;
    const createdBy = `projects/${projectNumber}/${igm.scope.kind}/${igm.scope.name}/instanceGroupManagers/${igm.name}`;
    const metadata = [
      ...(template.properties.metadata?.items ?? []).map((m) => ({ key: m.key, value: m.value ?? '' })),
      {
        key: 'instance-template',
        value: `projects/${projectNumber}/global/instanceTemplates/${template.name}`,
      },
      { key: 'created-by', value: createdBy },
    ];
    return {
      id: this.rt.settings.ids.numericId(),
      name: slot.name,
      zone: slot.zone,
      status: 'PROVISIONING',
      creationTimestamp: this.rt.iso(),
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
  }
}
