import { AddressPool, EventLog } from './activity';
import { alreadyExists, ApiError, notFound } from './errors';
import type { Runtime } from './runtime';
import {
  type Autoscaler,
  type Igm,
  type Instance,
  type Scope,
  type Slot,
  type Template,
  type TemplateProperties,
  igmKey,
  instanceKey,
  lastSegment,
  regionOfZone,
  scopePath,
} from './state';

export type { EmulatorEvent } from './activity';

export interface ManagedInstance {
  slot: Slot;
  instance: Instance | undefined;
}

const inScope = (scope: Scope) => (r: { scope: Scope }) =>
  r.scope.kind === scope.kind && r.scope.name === scope.name;

/**
 * The emulator's resources (templates, instances, groups, autoscalers), with the pool of instance
 * addresses and the recent-events log the status page shows. Lookups throw the API's `notFound`.
 */
export class Registry {
  private readonly templates = new Map<string, Template>();
  private readonly instances = new Map<string, Instance>();
  private readonly igms = new Map<string, Igm>();
  private readonly autoscalers = new Map<string, Autoscaler>();
  readonly addresses: AddressPool;
  readonly events: EventLog;

  constructor(private readonly rt: Runtime) {
    this.addresses = new AddressPool(rt.settings.addressPrefix);
    this.events = new EventLog(rt);
  }

  private get project(): string {
    return this.rt.project;
  }

  /** A zone or region the emulator serves, else the API's 404. */
  checkScope(scope: Scope): void {
    const zones = this.rt.settings.zones;
    const known =
      scope.kind === 'zones' ? zones.includes(scope.name) : zones.some((z) => regionOfZone(z) === scope.name);
    if (!known) throw notFound(`projects/${this.project}/${scope.kind}/${scope.name}`);
  }

  // ---- templates (seeded, never inserted through the API) ---------------------------------------

  addTemplate(name: string, properties: TemplateProperties): Template {
    if (this.templates.has(name))
      throw alreadyExists(`projects/${this.project}/global/instanceTemplates/${name}`);
    const t: Template = {
      id: this.rt.settings.ids.numericId(),
      name,
      creationTimestamp: this.rt.iso(),
      properties,
    };
    this.templates.set(name, t);
    return t;
  }

  /** Forgets a template; refused while a group uses it, as Compute refuses it. */
  removeTemplate(name: string): Template {
    const t = this.getTemplate(name);
    const user = [...this.igms.values()].find((g) => lastSegment(g.instanceTemplate) === name);
    if (user)
      throw new ApiError(
        400,
        'resourceInUseByAnotherResource',
        `The instance_template resource 'projects/${this.project}/global/instanceTemplates/${name}' is already being used by '${scopePath(this.project, user.scope)}/instanceGroupManagers/${user.name}'`,
      );
    this.templates.delete(name);
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

  // ---- instance group managers --------------------------------------------------------------------

  /** The group, if it exists; unlike getIgm, no API error. */
  findIgm(scope: Scope, name: string): Igm | undefined {
    return this.igms.get(igmKey(scope, name));
  }

  addIgm(igm: Igm): void {
    this.igms.set(igmKey(igm.scope, igm.name), igm);
  }

  getIgm(scope: Scope, name: string): Igm {
    this.checkScope(scope);
    const igm = this.igms.get(igmKey(scope, name));
    if (!igm) throw notFound(`${scopePath(this.project, scope)}/instanceGroupManagers/${name}`);
    return igm;
  }

  removeIgm(igm: Igm): void {
    this.igms.delete(igmKey(igm.scope, igm.name));
  }

  /** The group an instance belongs to, if it is managed and the group still exists. */
  igmOf(inst: Instance): Igm | undefined {
    return inst.igm ? this.igms.get(inst.igm) : undefined;
  }

  listIgms(scope: Scope): Igm[] {
    this.checkScope(scope);
    return [...this.igms.values()].filter(inScope(scope));
  }

  allIgms(): Igm[] {
    return [...this.igms.values()];
  }

  /** Each of the group's names with its current instance (none while missing or being replaced). */
  managedInstances(igm: Igm): ManagedInstance[] {
    return igm.slots.map((slot) => ({ slot, instance: this.instanceOfSlot(slot) }));
  }

  instanceOfSlot(slot: Slot): Instance | undefined {
    const i = this.instances.get(instanceKey(slot.zone, slot.name));
    return i && i.id === slot.instanceId ? i : undefined;
  }

  // ---- autoscalers --------------------------------------------------------------------------------

  hasAutoscaler(scope: Scope, name: string): boolean {
    return this.autoscalers.has(igmKey(scope, name));
  }

  addAutoscaler(a: Autoscaler): void {
    this.autoscalers.set(igmKey(a.scope, a.name), a);
  }

  getAutoscaler(scope: Scope, name: string): Autoscaler {
    this.checkScope(scope);
    const a = this.autoscalers.get(igmKey(scope, name));
    if (!a) throw notFound(`${scopePath(this.project, scope)}/autoscalers/${name}`);
    return a;
  }

  removeAutoscaler(a: Autoscaler): void {
    this.autoscalers.delete(igmKey(a.scope, a.name));
  }

  listAutoscalers(scope: Scope): Autoscaler[] {
    this.checkScope(scope);
    return [...this.autoscalers.values()].filter(inScope(scope));
  }

  allAutoscalers(): Autoscaler[] {
    return [...this.autoscalers.values()];
  }

  // ---- instances ----------------------------------------------------------------------------------

  addInstance(inst: Instance): void {
    this.instances.set(instanceKey(inst.zone, inst.name), inst);
  }

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

  /** Forgets the instance unless its name has meanwhile been taken by a newer one. */
  removeInstance(inst: Instance): void {
    const key = instanceKey(inst.zone, inst.name);
    if (this.instances.get(key) === inst) this.instances.delete(key);
  }

  clearInstances(): void {
    this.instances.clear();
  }
}
