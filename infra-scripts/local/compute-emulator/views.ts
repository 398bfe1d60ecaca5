import { createHash } from 'node:crypto';

import { invalid } from './errors';
import {
  type Autoscaler,
  type Igm,
  type Instance,
  type Operation,
  type Slot,
  type Template,
  links,
  type Scope,
} from './state';

/** How the REST API prints each resource (JSON field names of compute v1; int64 as strings). */
const scopeField = (project: string, scope: Scope) =>
  scope.kind === 'zones'
    ? { zone: links.zone(project, scope.name) }
    : { region: links.region(project, scope.name) };

export function templateView(project: string, t: Template) {
  return {
    kind: 'compute#instanceTemplate',
    id: t.id,
    creationTimestamp: t.creationTimestamp,
    name: t.name,
    ...(t.description === undefined ? {} : { description: t.description }),
    properties: t.properties,
    selfLink: links.template(project, t.name),
  };
}

/**
 * An instance's metadata fingerprint: opaque to clients, it changes whenever the items do, so a hash
 * of the items is one (instances.setMetadata refuses a stale one with 412).
 */
export function metadataFingerprint(items: Instance['metadata']): string {
  // 8 bytes, as Compute's: gcloud decodes and re-encodes it (a bytes field), so it must be canonical base64.
  return createHash('sha256').update(JSON.stringify(items)).digest().subarray(0, 8).toString('base64');
}

export function instanceView(project: string, i: Instance) {
  return {
    kind: 'compute#instance',
    id: i.id,
    creationTimestamp: i.creationTimestamp,
    name: i.name,
    machineType: `${links.zone(project, i.zone)}/machineTypes/${i.machineType}`,
    status: i.status,
    zone: links.zone(project, i.zone),
    networkInterfaces: [
      {
        kind: 'compute#networkInterface',
        name: 'nic0',
        network: `https://www.googleapis.com/compute/v1/projects/${project}/global/networks/default`,
        networkIP: i.networkIP,
      },
    ],
    metadata: { kind: 'compute#metadata', fingerprint: metadataFingerprint(i.metadata), items: i.metadata },
    labels: i.labels,
    tags: { items: i.tags },
    scheduling: { automaticRestart: true, onHostMaintenance: 'MIGRATE', preemptible: false },
    selfLink: links.instance(project, i.zone, i.name),
  };
}

export function managedInstanceView(project: string, igm: Igm, slot: Slot, inst: Instance | undefined) {
  return {
    instance: links.instance(project, slot.zone, slot.name),
    name: slot.name,
    ...(inst ? { id: inst.id, instanceStatus: inst.status } : {}),
    currentAction: slot.action,
    version: { instanceTemplate: igm.instanceTemplate },
    lastAttempt: {},
  };
}

export function igmView(project: string, igm: Igm) {
  const count = (a: Slot['action']) => igm.slots.filter((s) => s.action === a).length;
  const busy = igm.slots.length - count('NONE');
  return {
    kind: 'compute#instanceGroupManager',
    id: igm.id,
    creationTimestamp: igm.creationTimestamp,
    name: igm.name,
    description: igm.description,
    ...scopeField(project, igm.scope),
    ...(igm.scope.kind === 'regions'
      ? {
          distributionPolicy: {
            zones: igm.zones.map((z) => ({ zone: links.zone(project, z) })),
            targetShape: 'EVEN',
          },
        }
      : {}),
    instanceTemplate: igm.instanceTemplate,
    versions: [{ instanceTemplate: igm.instanceTemplate, targetSize: { calculated: igm.targetSize } }],
    instanceGroup: links.instanceGroup(project, igm.scope, igm.name),
    baseInstanceName: igm.baseInstanceName,
    fingerprint: igm.fingerprint,
    currentActions: {
      none: count('NONE'),
      creating: count('CREATING'),
      creatingWithoutRetries: 0,
      verifying: 0,
      recreating: count('RECREATING'),
      deleting: count('DELETING'),
      abandoning: count('ABANDONING'),
      restarting: 0,
      refreshing: 0,
      resuming: 0,
      starting: 0,
      stopping: 0,
      suspending: 0,
    },
    status: {
      isStable: busy === 0 && igm.slots.length === igm.targetSize,
      versionTarget: { isReached: true },
      stateful: { hasStatefulConfig: false },
      ...(igm.autoscaler ? { autoscaler: igm.autoscaler } : {}),
    },
    targetSize: igm.targetSize,
    listManagedInstancesResults: igm.listManagedInstancesResults ?? 'PAGELESS',
    selfLink: links.igm(project, igm.scope, igm.name),
  };
}

export function autoscalerView(project: string, a: Autoscaler) {
  return {
    kind: 'compute#autoscaler',
    id: a.id,
    creationTimestamp: a.creationTimestamp,
    name: a.name,
    description: a.description,
    target: a.target,
    autoscalingPolicy: a.policy,
    ...scopeField(project, a.scope),
    status: 'ACTIVE',
    statusDetails: a.statusDetails,
    ...(a.recommendedSize !== undefined ? { recommendedSize: a.recommendedSize } : {}),
    ...(a.scheduleStatus && Object.keys(a.scheduleStatus).length > 0
      ? { scalingScheduleStatus: a.scheduleStatus }
      : {}),
    selfLink: links.autoscaler(project, a.scope, a.name),
  };
}

export function operationView(project: string, op: Operation) {
  return {
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    ...scopeField(project, op.scope),
    operationType: op.operationType,
    targetLink: op.targetLink,
    targetId: op.targetId,
    status: op.status,
    user: op.user,
    progress: op.progress,
    insertTime: op.insertTime,
    startTime: op.startTime,
    ...(op.endTime ? { endTime: op.endTime } : {}),
    ...(op.description ? { description: op.description } : {}),
    ...(op.errors ? { error: { errors: op.errors } } : {}),
    ...(op.httpErrorStatusCode
      ? { httpErrorStatusCode: op.httpErrorStatusCode, httpErrorMessage: op.httpErrorMessage }
      : {}),
    selfLink: links.operation(project, op.scope, op.name),
  };
}

/**
 * Pages a list sorted by name. The token names the last item returned, so the next page starts
 * after it even if items were added or removed meanwhile.
 */
export function page<T>(
  items: T[],
  nameOf: (t: T) => string,
  maxResults: number,
  pageToken: string | undefined,
): { items: T[]; nextPageToken?: string } {
  const sorted = [...items].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const decoded = pageToken === undefined ? undefined : Buffer.from(pageToken, 'base64url').toString('utf8');
  if (decoded !== undefined && !decoded.startsWith('after:'))
    throw invalid('Invalid value for field pageToken.');
  const after = decoded?.slice('after:'.length);
  const rest = after === undefined ? sorted : sorted.filter((t) => nameOf(t).localeCompare(after) > 0);
  const slice = rest.slice(0, maxResults);
  const more = rest.length > maxResults;
  return {
    items: slice,
    ...(more
      ? {
          nextPageToken: Buffer.from(`after:${nameOf(slice[slice.length - 1]!)}`, 'utf8').toString(
            'base64url',
          ),
        }
      : {}),
  };
}
