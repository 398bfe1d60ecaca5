import type { AuditEmitter } from './audit';
import { alreadyExists, ApiError, fingerprintMismatch, invalid, sameFingerprint } from './errors';
import { checkInstanceRefs } from './instance-refs';
import type { MigController } from './mig-controller';
import type { Operations } from './operations';
import type { Registry } from './registry';
import type { Caller, Runtime } from './runtime';
import {
  type Igm,
  lastSegment,
  links,
  type ListManagedInstancesResults,
  type Operation,
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
  listManagedInstancesResults?: ListManagedInstancesResults;
}

export interface IgmPatch {
  fingerprint?: string;
  description?: string;
  instanceTemplate?: string;
  listManagedInstancesResults?: ListManagedInstancesResults;
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
      listManagedInstancesResults: body.listManagedInstancesResults ?? 'PAGELESS',
    };
    this.registry.addIgm(igm);
    return this.reconcileOperation(igm, 'insert', caller);
  }

  patch(scope: Scope, name: string, body: IgmPatch, caller: Caller): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (body.fingerprint !== undefined && !sameFingerprint(body.fingerprint, igm.fingerprint))
      throw fingerprintMismatch();
    const template =
      body.instanceTemplate === undefined
        ? undefined
        : this.registry.getTemplate(lastSegment(body.instanceTemplate));
    if (body.description !== undefined) igm.description = body.description;
    if (template) igm.instanceTemplate = links.template(this.rt.project, template.name);
    if (body.listManagedInstancesResults !== undefined)
      igm.listManagedInstancesResults = body.listManagedInstancesResults;
    igm.fingerprint = this.rt.fingerprint();
    return this.reconcileOperation(igm, 'patch', caller);
  }

  resize(scope: Scope, name: string, size: number, caller: Caller): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (!Number.isInteger(size) || size < 0 || size > 1000)
      throw invalid(`Invalid value for field 'size': '${size}'. Must be between 0 and 1000.`);
    igm.targetSize = size;
    igm.fingerprint = this.rt.fingerprint();
    this.registry.events.record('resize', `${igm.name}: target size ${size}`);
    return this.reconcileOperation(igm, 'compute.instanceGroupManagers.resize', caller);
  }

  /**
   * deleteInstances / recreateInstances / abandonInstances. As on GCE the request is accepted and
   * its operation fails (nothing done; the `last` audit entry carries the failure) when an instance is
   * malformed, outside the group, or already being deleted or abandoned; deleteInstances may instead
   * skip such instances with `skipInstancesOnValidationError`.
   */
  actOnInstances(
    scope: Scope,
    name: string,
    action: InstancesAction,
    refs: string[],
    caller: Caller,
    options: { skipInstancesOnValidationError?: boolean } = {},
  ): Operation {
    const igm = this.registry.getIgm(scope, name);
    if (refs.length === 0) throw new ApiError(400, 'required', "Required field 'instances' not specified");
    const skip = action === 'deleteInstances' && options.skipInstancesOnValidationError === true;
    const check = checkInstanceRefs(refs, igm, {
      id: this.rt.project,
      number: this.rt.settings.projectNumber,
    });
    const problems = [...check.fatal, ...(skip ? [] : check.skippable)];
    // Up to 1000 instances per request: the error names the first few problems, not all.
    const summary =
      problems.slice(0, 5).join(' ') + (problems.length > 5 ? ` (and ${problems.length - 5} more)` : '');
    const actor = this.rt.apiActor(caller);
    const resource = scope.kind === 'zones' ? 'instanceGroupManagers' : 'regionInstanceGroupManagers';
    const method = `v1.compute.${resource}.${action}`;
    const request = { instances: refs, ...(skip ? { skipInstancesOnValidationError: true } : {}) };
    if (problems.length === 0) {
      const want = wantOf[action];
      for (const s of check.slots) s.want = want;
      if (want !== 'recreate') igm.targetSize = Math.max(0, igm.targetSize - check.slots.length);
      igm.fingerprint = this.rt.fingerprint();
      this.registry.events.record(
        action,
        `${igm.name}: ${check.slots.map((s) => s.name).join(', ') || 'none'}`,
      );
    } else {
      this.registry.events.record(action, `${igm.name}: refused: ${summary}`);
    }
    const op = this.operations.run(
      {
        scope: igm.scope,
        operationType: `compute.instanceGroupManagers.${action}`,
        targetLink: links.igm(this.rt.project, igm.scope, igm.name),
        targetId: igm.id,
      },
      actor,
      (op) => {
        if (problems.length > 0) {
          const err = invalid(summary);
          // google.rpc.Code 3 (INVALID_ARGUMENT) in the audit entry's status.
          this.audit.group(igm, method, 'last', actor, op, request, { code: 3, message: err.message });
          return Promise.reject(err);
        }
        this.migs.reconcile(igm);
        this.audit.group(igm, method, 'last', actor, op, request);
        return Promise.resolve();
      },
    );
    this.audit.group(igm, method, 'first', actor, op, request);
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
