import { z } from 'zod';
import { parse, resourceName as name } from './compute-schemas';
import { ApiError, fingerprintMismatch, notFound, sameFingerprint } from './errors';
import type { InstanceLifecycle } from './instances';
import { NetworkResources } from './network-resources';
import type { Operations } from './operations';
import type { Registry } from './registry';
import type { Caller, Runtime } from './runtime';
import { metadataFingerprint } from './views';
import {
  apiBase,
  type Instance,
  lastSegment,
  links,
  type Operation,
  type Scope,
  scopePath,
  type TemplateProperties,
} from './state';

const metadata = z
  .object({ items: z.array(z.object({ key: z.string(), value: z.string().optional() })).optional() })
  .passthrough();
// What a template's properties and an instance share, as far as the emulator reads them.
const instanceFields = {
  labels: z.record(z.string(), z.string()).optional(),
  metadata: metadata.optional(),
  tags: z
    .object({ items: z.array(z.string()).optional() })
    .passthrough()
    .optional(),
};
const templateInsert = z
  .object({
    name,
    description: z.string().optional(),
    properties: z
      .object({
        machineType: z.string().optional(),
        ...instanceFields,
      })
      .passthrough(),
  })
  .passthrough();
const instanceInsert = z
  .object({
    name,
    machineType: z.string().min(1),
    ...instanceFields,
    networkInterfaces: z.array(z.object({ networkIP: z.string().optional() }).passthrough()).optional(),
  })
  .passthrough();
const projectMetadata = z
  .object({
    items: z.array(z.object({ key: z.string(), value: z.string().optional() })).optional(),
    fingerprint: z.string().optional(),
  })
  .passthrough();

/** A global operation: Compute answers every global mutation with one; here it is done at once. */
export interface GlobalOperation {
  id: string;
  name: string;
  operationType: string;
  targetLink: string;
  status: 'DONE';
  progress: 100;
  insertTime: string;
  user: string;
}

/**
 * What the deploy creates besides the groups' work: templates, unmanaged instances (the Consul
 * servers), deletion of groups and autoscalers, the project's common metadata (`compute ssh` adds its
 * key there), and the network resources. Mutations answer with operations as Compute does.
 */
export class DeployApi {
  readonly network: NetworkResources;
  private readonly globalOps = new Map<string, GlobalOperation>();
  private commonMetadata: { key: string; value: string }[] = [];
  private metadataFingerprint: string;

  constructor(
    private readonly rt: Runtime,
    private readonly registry: Registry,
    private readonly operations: Operations,
    private readonly instances: InstanceLifecycle,
  ) {
    this.network = new NetworkResources(rt.project, rt.settings.ids, () => rt.iso());
    this.metadataFingerprint = rt.fingerprint();
  }

  globalOperation(operationType: string, targetLink: string): GlobalOperation {
    const op: GlobalOperation = {
      id: this.rt.settings.ids.numericId(),
      name: `operation-${this.rt.settings.clock()}-${this.rt.settings.ids.hex(13)}`,
      operationType,
      targetLink,
      status: 'DONE',
      progress: 100,
      insertTime: this.rt.iso(),
      user: this.rt.settings.principalEmail,
    };
    this.globalOps.set(op.name, op);
    return op;
  }

  getGlobalOperation(opName: string): GlobalOperation {
    const op = this.globalOps.get(opName);
    if (!op) throw notFound(`projects/${this.rt.project}/global/operations/${opName}`);
    return op;
  }

  /** A regional or zonal change already applied: its operation runs for the emulator's delay. */
  scopedOperation(scope: Scope, operationType: string, targetLink: string, caller: Caller): Operation {
    this.registry.checkScope(scope);
    return this.operations.run(
      { scope, operationType, targetLink, targetId: this.rt.settings.ids.numericId() },
      this.rt.apiActor(caller),
      () => Promise.resolve(),
    );
  }

  insertTemplate(input: unknown): GlobalOperation {
    const body = parse(templateInsert, input, 'resource');
    const t = this.registry.addTemplate(body.name, body.properties as TemplateProperties);
    if (body.description !== undefined) t.description = body.description;
    return this.globalOperation('insert', links.template(this.rt.project, t.name));
  }

  deleteTemplate(templateName: string): GlobalOperation {
    this.registry.removeTemplate(templateName);
    return this.globalOperation('delete', links.template(this.rt.project, templateName));
  }

  /** Refused while an autoscaler targets the group; else the group goes and its instances with it. */
  deleteIgm(scope: Scope, igmName: string, caller: Caller): Operation {
    const igm = this.registry.getIgm(scope, igmName);
    const link = links.igm(this.rt.project, scope, igmName);
    if (igm.autoscaler)
      throw new ApiError(
        400,
        'resourceInUseByAnotherResource',
        `The instance_group_manager resource '${scopePath(this.rt.project, scope)}/instanceGroupManagers/${igmName}' is already being used by '${igm.autoscaler.replace(`${apiBase}/`, '')}'`,
      );
    this.registry.removeIgm(igm);
    const actor = this.rt.apiActor(caller);
    const members = igm.slots.flatMap((s) => this.registry.instanceOfSlot(s) ?? []);
    return this.operations.run(
      { scope, operationType: 'delete', targetLink: link, targetId: igm.id },
      actor,
      async () => {
        await Promise.all(members.map((i) => this.instances.remove(i, actor)));
      },
    );
  }

  deleteAutoscaler(scope: Scope, autoscalerName: string, caller: Caller): Operation {
    const a = this.registry.getAutoscaler(scope, autoscalerName);
    this.registry.removeAutoscaler(a);
    const igm = this.registry
      .allIgms()
      .find((g) => g.autoscaler === links.autoscaler(this.rt.project, scope, a.name));
    if (igm) delete igm.autoscaler;
    return this.scopedOperation(scope, 'delete', links.autoscaler(this.rt.project, scope, a.name), caller);
  }

  /** instances.insert of an unmanaged instance: booted by the driver under the API's operation. */
  insertInstance(zone: string, input: unknown, caller: Caller): Operation {
    const body = parse(instanceInsert, input, 'resource');
    const scope: Scope = { kind: 'zones', name: zone };
    this.registry.checkScope(scope);
    const existing = this.registry.listInstances(zone).find((i) => i.name === body.name);
    if (existing)
      throw new ApiError(
        409,
        'alreadyExists',
        `The resource '${scopePath(this.rt.project, scope)}/instances/${body.name}' already exists`,
      );
    const ip = body.networkInterfaces?.[0]?.networkIP ?? this.registry.addresses.take();
    if (!ip) throw new ApiError(400, 'invalid', 'No address left in the emulated subnet.');
    const inst: Instance = {
      id: this.rt.settings.ids.numericId(),
      name: body.name,
      zone,
      status: 'PROVISIONING',
      creationTimestamp: this.rt.iso(),
      networkIP: ip,
      metadata: (body.metadata?.items ?? []).map((m) => ({ key: m.key, value: m.value ?? '' })),
      labels: body.labels ?? {},
      tags: body.tags?.items ?? [],
      machineType: lastSegment(body.machineType),
      hung: false,
      busy: true,
    };
    const actor = this.rt.apiActor(caller);
    return this.operations.run(
      {
        scope,
        operationType: 'insert',
        targetLink: links.instance(this.rt.project, zone, inst.name),
        targetId: inst.id,
      },
      actor,
      () => this.instances.boot(inst, actor),
    );
  }

  projectView(): Record<string, unknown> {
    return {
      kind: 'compute#project',
      id: this.rt.settings.projectNumber,
      name: this.rt.project,
      selfLink: `${apiBase}/projects/${this.rt.project}`,
      commonInstanceMetadata: {
        kind: 'compute#metadata',
        fingerprint: this.metadataFingerprint,
        items: this.commonMetadata,
      },
      defaultServiceAccount: `${this.rt.settings.projectNumber}-compute@developer.gserviceaccount.com`,
      xpnProjectStatus: 'UNSPECIFIED_XPN_PROJECT_STATUS',
    };
  }

  /** projects.setCommonInstanceMetadata: replaces the items; a stale fingerprint is refused (412). */
  setCommonMetadata(input: unknown): GlobalOperation {
    const body = parse(projectMetadata, input, 'resource');
    if (body.fingerprint !== undefined && !sameFingerprint(body.fingerprint, this.metadataFingerprint))
      throw fingerprintMismatch();
    this.commonMetadata = (body.items ?? []).map((m) => ({ key: m.key, value: m.value ?? '' }));
    this.metadataFingerprint = this.rt.fingerprint();
    return this.globalOperation('setCommonInstanceMetadata', `${apiBase}/projects/${this.rt.project}`);
  }

  /**
   * instances.setMetadata: replaces the items; the fingerprint read with the instance is required
   * (https://cloud.google.com/compute/docs/reference/rest/v1/instances/setMetadata: a missing or stale
   * one fails with 412 conditionNotMet). gcloud compute ssh falls back to it when the project's
   * metadata cannot take its key.
   */
  setInstanceMetadata(zone: string, instanceName: string, input: unknown, caller: Caller): Operation {
    const body = parse(projectMetadata, input, 'resource');
    const scope: Scope = { kind: 'zones', name: zone };
    this.registry.checkScope(scope);
    const inst = this.registry.listInstances(zone).find((i) => i.name === instanceName);
    if (!inst) throw notFound(`${scopePath(this.rt.project, scope)}/instances/${instanceName}`);
    if (
      body.fingerprint === undefined ||
      !sameFingerprint(body.fingerprint, metadataFingerprint(inst.metadata))
    )
      throw fingerprintMismatch();
    inst.metadata = (body.items ?? []).map((m) => ({ key: m.key, value: m.value ?? '' }));
    return this.operations.run(
      {
        scope,
        operationType: 'setMetadata',
        targetLink: links.instance(this.rt.project, zone, inst.name),
        targetId: inst.id,
      },
      this.rt.apiActor(caller),
      () => Promise.resolve(),
    );
  }

  commonMetadataItems(): { key: string; value: string }[] {
    return this.commonMetadata;
  }
}
