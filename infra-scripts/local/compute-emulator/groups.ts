import type { AuditEmitter } from './audit';
import { alreadyExists, ApiError, fingerprintMismatch, invalid } from './errors';
import type { MigController } from './mig-controller';
import type { Operations } from './operations';
import type { Registry } from './registry';
import type { Caller, Runtime } from './runtime';
import {
  type Igm,
  lastSegment,
  links,
  type Operation,
  parseInstanceRef,
  regionOfZone,
  type Scope,
  scopePath,
} from './state';

export interface IgmInsert {
  name: string;
  baseInstanceName?: string;
  instanceTemplate: string;
  targetSize: number;
  description?: string;
  zones?: string[];
}

export interface IgmPatch {
  fingerprint?: string;
  description?: string;
  instanceTemplate?: string;
}

export type InstancesAction = 'deleteInstances' | 'recreateInstances' | 'abandonInstances';

const wantOf = {
  deleteInstances: 'delete',
  recreateInstances: 'recreate',
  abandonInstances: 'abandon',
} as const;

/**
 * The instanceGroupManagers API: checks a request, records what the caller wants (target size,
 * template, per-name wishes) and returns an operation whose work is a reconcile by the MIG controller.
 */
export class GroupsApi {
  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly operations: Operations,
    private readonly migs: MigController,
    private readonly audit: AuditEmitter,
  ) {}

  insert(scope: Scope, body: IgmInsert, caller: Caller): Operation {
    const project = this.rt.project;
    const allZones = this.rt.settings.zones;
    this.registry.checkScope(scope);
    if (this.registry.findIgm(scope, body.name))
      throw alreadyExists(`${scopePath(project, scope)}/instanceGroupManagers/${body.name}`);
    const template = this.registry.getTemplate(lastSegment(body.instanceTemplate));
    const zones =
      scope.kind === 'zones'
        ? [scope.name]
        : (body.zones ?? allZones.filter((z) => regionOfZone(z) === scope.name)).map(lastSegment);
    for (const z of zones) {
      if (!allZones.includes(z) || (scope.kind === 'regions' && regionOfZone(z) !== scope.name))
        throw invalid(`Invalid value for field 'resource.distributionPolicy.zones': '${z}'.`);
    }
    const igm: Igm = {
      id: this.rt.settings.ids.numericId(),
      name: body.name,
      scope,
      description: body.description ?? '',
      baseInstanceName: body.baseInstanceName ?? body.name,
      instanceTemplate: links.template(project, template.name),
      targetSize: body.targetSize,
      fingerprint: this.rt.fingerprint(),
      creationTimestamp: this.rt.iso(),
      zones,
      slots: [],
    };
    this.registry.addIgm(igm);
    return this.reconcileOperation(igm, 'insert', caller);
  }

  patch(scope: Scope, name: string, body: IgmPatch, caller: Caller): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (body.fingerprint !== undefined && body.fingerprint !== igm.fingerprint) throw fingerprintMismatch();
    const template =
      body.instanceTemplate === undefined
        ? undefined
        : this.registry.getTemplate(lastSegment(body.instanceTemplate));
    if (body.description !== undefined) igm.description = body.description;
    if (template) igm.instanceTemplate = links.template(this.rt.project, template.name);
    igm.fingerprint = this.rt.fingerprint();
    return this.reconcileOperation(igm, 'patch', caller);
  }

  resize(scope: Scope, name: string, size: number, caller: Caller): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (!Number.isInteger(size) || size < 0 || size > 1000)
      throw invalid(`Invalid value for field 'size': '${size}'. Must be between 0 and 1000.`);
    igm.targetSize = size;
    igm.fingerprint = this.rt.fingerprint();
    this.registry.record('resize', `${igm.name}: target size ${size}`);
    return this.reconcileOperation(igm, 'compute.instanceGroupManagers.resize', caller);
  }

  /** deleteInstances / recreateInstances / abandonInstances: all names must belong to the group. */
  actOnInstances(
    scope: Scope,
    name: string,
    action: InstancesAction,
    refs: string[],
    caller: Caller,
  ): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (refs.length === 0) throw new ApiError(400, 'required', "Required field 'instances' not specified");
    const slots = refs.map((ref) => {
      const { zone, name: instanceName } = parseInstanceRef(ref);
      const slot = igm.slots.find((s) => s.name === instanceName && (zone === undefined || s.zone === zone));
      if (!slot || slot.want === 'delete' || slot.want === 'abandon')
        throw invalid(`The instance '${ref}' is not a member of the instance group '${igm.name}'.`);
      return slot;
    });
    const want = wantOf[action];
    for (const s of slots) s.want = want;
    if (want !== 'recreate') igm.targetSize = Math.max(0, igm.targetSize - slots.length);
    igm.fingerprint = this.rt.fingerprint();
    const resource = scope.kind === 'zones' ? 'instanceGroupManagers' : 'regionInstanceGroupManagers';
    const op = this.reconcileOperation(igm, `compute.instanceGroupManagers.${action}`, caller);
    const instances = slots.map((s) => links.instance(this.rt.project, s.zone, s.name));
    this.audit.group(igm, `v1.compute.${resource}.${action}`, this.rt.apiActor(caller), op, { instances });
    this.registry.record(action, `${igm.name}: ${slots.map((s) => s.name).join(', ')}`);
    return op;
  }

  private reconcileOperation(igm: Igm, operationType: string, caller: Caller): Operation {
    return this.operations.run(
      {
        scope: igm.scope,
        operationType,
        targetLink: links.igm(this.rt.project, igm.scope, igm.name),
        targetId: igm.id,
      },
      this.rt.apiActor(caller),
      () => Promise.resolve(this.migs.reconcile(igm)),
    );
  }
}
