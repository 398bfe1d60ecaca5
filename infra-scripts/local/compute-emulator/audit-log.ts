import { apiBase, type Scope, scopePath } from './state';

/**
 * Cloud Audit Log `LogEntry`s as a log sink forwards them to Pub/Sub, for the lifecycle changes the
 * emulator makes (shapes as in shared/fixtures/events). Pure builders: time and ids come in.
 */
export type LogEntry = Record<string, unknown>;

export type Phase = 'first' | 'last';

interface Common {
  project: string;
  at: Date;
  insertId: string;
}

/** How a failed operation's `last` entry reports the failure (google.rpc.Status). */
export interface FailureStatus {
  code: number;
  message: string;
}

export interface ActivityRecord extends Common {
  methodName: string;
  phase: Phase;
  principalEmail: string;
  userAgent: string;
  operation: { id: string; name: string; operationType: string; targetId: string };
  /** Set on the `last` entry of a failed operation. */
  failure?: FailureStatus;
}

export interface InstanceActivity extends ActivityRecord {
  /**
   * The project as `resourceName` names it: the id for a person's request, the project NUMBER when a
   * MIG acts on its own (see test/fixtures/events/audit-instance-delete-first.json); the labels and
   * links keep the id either way.
   */
  resourceProject?: string;
  zone: string;
  instanceName: string;
  instanceId: string;
}

export interface GroupActivity extends ActivityRecord {
  scope: Scope;
  igmName: string;
  igmId: string;
  /** The request's own fields, e.g. `{instances: [...]}`. */
  request: Record<string, unknown>;
}

export interface SystemEvent extends Common {
  zone: string;
  instanceName: string;
  instanceId: string;
  methodName: string;
  operationId: string;
  message: string;
}

const logName = (project: string, log: 'activity' | 'system_event') =>
  `projects/${project}/logs/cloudaudit.googleapis.com%2F${log}`;

// Log entries arrive a little after the event; the sink sees both times.
const receiveTime = (at: Date) => new Date(at.getTime() + 350).toISOString();

function operationField(id: string, phase: Phase, producer: string): Record<string, unknown> {
  return phase === 'first' ? { first: true, id, producer } : { id, last: true, producer };
}

function activity(
  r: ActivityRecord,
  resourceName: string,
  resourceType: string,
  resource: Record<string, unknown>,
  extra: {
    request?: Record<string, unknown>;
    location: string;
    targetLink: string;
    scopeLink: Record<string, string>;
  },
): LogEntry {
  const permission = r.methodName.replace(/^v1\./, '');
  const firstOnly =
    r.phase === 'first'
      ? {
          authorizationInfo: [
            {
              granted: true,
              permission: permission.startsWith('compute.regionInstanceGroupManagers')
                ? permission.replace('regionInstanceGroupManagers', 'instanceGroupManagers')
                : permission,
              resourceAttributes: { name: resourceName, service: 'compute', type: resourceType },
            },
          ],
          request: { '@type': `type.googleapis.com/${permission}`, ...extra.request },
          resourceLocation: { currentLocations: [extra.location] },
          response: {
            '@type': 'type.googleapis.com/operation',
            id: r.operation.id,
            name: r.operation.name,
            operationType: r.operation.operationType,
            progress: '0',
            status: 'RUNNING',
            targetId: r.operation.targetId,
            targetLink: extra.targetLink,
            ...extra.scopeLink,
          },
        }
      : {};
  return {
    insertId: r.insertId,
    logName: logName(r.project, 'activity'),
    operation: operationField(r.operation.name, r.phase, 'compute.googleapis.com'),
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      authenticationInfo: { principalEmail: r.principalEmail },
      methodName: r.methodName,
      requestMetadata: { callerSuppliedUserAgent: r.userAgent },
      resourceName,
      serviceName: 'compute.googleapis.com',
      ...firstOnly,
      ...(r.failure ? { status: { code: r.failure.code, message: r.failure.message } } : {}),
    },
    receiveTimestamp: receiveTime(r.at),
    resource,
    severity: r.failure ? 'ERROR' : 'NOTICE',
    timestamp: r.at.toISOString(),
  };
}

export function instanceActivity(r: InstanceActivity): LogEntry {
  const path = `zones/${r.zone}/instances/${r.instanceName}`;
  return activity(
    r,
    `projects/${r.resourceProject ?? r.project}/${path}`,
    'compute.instances',
    { labels: { instance_id: r.instanceId, project_id: r.project, zone: r.zone }, type: 'gce_instance' },
    {
      location: r.zone,
      targetLink: `${apiBase}/projects/${r.project}/${path}`,
      scopeLink: { zone: `${apiBase}/projects/${r.project}/zones/${r.zone}` },
    },
  );
}

export function groupActivity(r: GroupActivity): LogEntry {
  const resourceName = `${scopePath(r.project, r.scope)}/instanceGroupManagers/${r.igmName}`;
  const scopeField = r.scope.kind === 'zones' ? 'zone' : 'region';
  return activity(
    r,
    resourceName,
    'compute.instanceGroupManagers',
    {
      labels: {
        instance_group_manager_id: r.igmId,
        instance_group_manager_name: r.igmName,
        location: r.scope.name,
        project_id: r.project,
      },
      type: 'gce_instance_group_manager',
    },
    {
      request: r.request,
      location: r.scope.name,
      targetLink: `${apiBase}/${resourceName}`,
      scopeLink: { [scopeField]: `${apiBase}/${scopePath(r.project, r.scope)}` },
    },
  );
}

export function systemEvent(r: SystemEvent): LogEntry {
  return {
    insertId: r.insertId,
    logName: logName(r.project, 'system_event'),
    operation: { first: true, id: r.operationId, last: true, producer: r.methodName },
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      authenticationInfo: { principalEmail: 'system@google.com' },
      methodName: r.methodName,
      requestMetadata: { callerIp: '0.0.0.0', callerSuppliedUserAgent: '' },
      resourceName: `projects/${r.project}/zones/${r.zone}/instances/${r.instanceName}`,
      serviceName: 'compute.googleapis.com',
      status: { message: r.message },
    },
    receiveTimestamp: receiveTime(r.at),
    resource: {
      labels: { instance_id: r.instanceId, project_id: r.project, zone: r.zone },
      type: 'gce_instance',
    },
    severity: 'INFO',
    timestamp: r.at.toISOString(),
  };
}
