import { computeNamePattern, instanceIdPattern } from '../membership';
import { decodePubsubMessage } from '../pubsub';
import { logEntrySchema, type LogEntry } from './schema';

/**
 * What an audit-log entry means for the Consul membership of the instances it names:
 * - `drain`: the instance is about to go (deletion started, a MIG will delete/recreate/abandon it);
 * - `remove`: the instance is gone (deleted, preempted, crashed, stopped, suspended, repaired);
 * - `restore`: the instance is (back) in service (created, started, resumed, or the operation that
 *   was draining it failed), so maintenance this function set for it is lifted.
 */
export type EventAction = 'drain' | 'remove' | 'restore';
export type Phase = 'first' | 'last' | 'single' | 'none';

export interface EventTarget {
  project: string;
  zone: string;
  /** The instance name; when `byId`, the numeric id the entry named the instance by instead. */
  name: string;
  /** Compute accepts an instance's numeric id in place of its name: the node is then found by id. */
  byId?: boolean;
  /** The entry's `resource.labels.instance_id`. */
  instanceId?: string;
}

export interface InstanceEvent {
  /** Ledger id: insertId, operation id and phase. */
  id: string;
  insertId: string;
  operationId?: string;
  phase: Phase;
  method: string;
  action: EventAction;
  /** When the change happened (entry `timestamp`), in ms since the epoch: orders events. */
  time: number;
  /**
   * `gone`: a removal logged by the system, whose node's gossip state decides the force-leave.
   * Every action is confirmed by Compute whatever this says (plan.ts `needsConfirmation`).
   */
  confirm?: 'gone';
  targets: EventTarget[];
}

export type ParseResult =
  | { ok: true; event: InstanceEvent }
  | { ok: false; outcome: 'malformed' | 'irrelevant'; reason: string; insertId?: string; method?: string };

const zonePattern = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const projectPattern = /^[a-z][-a-z0-9.:]{4,61}[a-z0-9]$/;

// Methods on one instance: what the first and the last entry of their operation mean.
const lifecycleMethods = new Map<string, { first: EventAction | null; last: EventAction | null }>([
  ['compute.instances.delete', { first: 'drain', last: 'remove' }],
  ['compute.instances.stop', { first: 'drain', last: 'remove' }],
  ['compute.instances.suspend', { first: 'drain', last: 'remove' }],
  ['compute.instances.insert', { first: null, last: 'restore' }],
  ['compute.instances.start', { first: null, last: 'restore' }],
  ['compute.instances.resume', { first: null, last: 'restore' }],
]);

// System events after which the instance runs again with the same id (restarted in place).
const backMethods = new Set(['compute.instances.automaticRestart']);

// System events: the instance is already gone when they are logged.
const goneMethods = new Set([
  'compute.instances.preempted',
  'compute.instances.hostError',
  'compute.instances.guestTerminate',
  'compute.instances.terminateOnHostMaintenance',
  'compute.instances.repair.recreateInstance',
]);

/** Cloud Logging refuses entries over 256 KiB: anything larger is not an audit entry. */
export const maxEntryBytes = 256 * 1024;

/** `v1.compute.instances.delete`, `beta.…` and `compute.instances.preempted` share one form. */
const normalizeMethod = (methodName: string) => methodName.replace(/^(v1|beta|alpha)\./, '');

function phaseOf(entry: LogEntry): Phase {
  const first = entry.operation?.first === true;
  const last = entry.operation?.last === true;
  if (first && last) return 'single';
  if (first) return 'first';
  if (last) return 'last';
  return 'none';
}

const projectNumberPattern = /^[0-9]{1,19}$/;

/**
 * `projects/P/zones/Z/instances/N`, as a full URL or relative to the project. P may be the project id
 * or its number: when a MIG acts itself, Google logs `projects/<number>/…` (see test/fixtures/events).
 * The project a target belongs to is always `project`, the entry's `resource.labels.project_id`; a
 * path naming another project id is refused (another number cannot be told apart: Compute's answer
 * for the name in `project` decides). N may be the instance's numeric id (names start with a letter,
 * so the two never collide).
 */
function parseInstancePath(path: string, project: string): Omit<EventTarget, 'instanceId'> | null {
  const m = /(?:^|\/)(?:projects\/([^/]+)\/)?zones\/([^/]+)\/instances\/([^/?#]+)$/.exec(path);
  if (!m) return null;
  const [, pathProject, zone = '', name = ''] = m;
  if (pathProject !== undefined && pathProject !== project && !projectNumberPattern.test(pathProject))
    return null;
  if (!zonePattern.test(zone)) return null;
  if (instanceIdPattern.test(name)) return { project, zone, name, byId: true };
  if (!computeNamePattern.test(name)) return null;
  return { project, zone, name };
}

const rejectAs =
  (entry: { insertId?: string; method?: string }) =>
  (outcome: 'malformed' | 'irrelevant', reason: string): ParseResult => ({
    ok: false,
    outcome,
    reason,
    ...entry,
  });

/** Validates one audit-log entry and says what it means; never throws. */
export function parseLogEntry(input: unknown): ParseResult {
  const parsed = logEntrySchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    return { ok: false, outcome: 'malformed', reason: `not a Cloud Audit Log entry: ${issues}` };
  }
  const entry = parsed.data;
  const method = normalizeMethod(entry.protoPayload.methodName);
  const reject = rejectAs({ insertId: entry.insertId, method });
  if (!/\/logs\/cloudaudit\.googleapis\.com%2F(activity|system_event)$/.test(entry.logName)) {
    return reject(
      'irrelevant',
      `log ${entry.logName} is neither the activity nor the system_event audit log`,
    );
  }
  const phase = phaseOf(entry);
  const time = Date.parse(entry.timestamp);
  const labels = entry.resource.labels ?? {};
  const project = labels.project_id ?? '';
  if (!projectPattern.test(project))
    return reject('malformed', 'resource.labels.project_id is missing or invalid');
  const base = {
    id: [entry.insertId, entry.operation?.id ?? '-', phase].join('/'),
    insertId: entry.insertId,
    operationId: entry.operation?.id,
    phase,
    method,
    time,
  };
  const failed = (entry.protoPayload.status?.code ?? 0) !== 0;

  // The sink carries `gce_instance` entries only (infra-scripts/deploy/steps/pubsub.ts). A group's own
  // deleteInstances / recreateInstances is followed by each instance's `compute.instances.delete`,
  // logged by the group's service agent (test/fixtures/events/audit-instance-delete-first.json):
  // those drain, confirmed by their operation. An abandoned instance keeps running and serving.
  if (entry.resource.type !== 'gce_instance')
    return reject('irrelevant', `resource type ${entry.resource.type} is not gce_instance`);
  let action: EventAction | null;
  let confirm: InstanceEvent['confirm'];
  const meaning = lifecycleMethods.get(method);
  if (goneMethods.has(method)) {
    action = 'remove';
    confirm = 'gone';
  } else if (backMethods.has(method)) {
    action = 'restore';
  } else if (meaning) {
    // An entry with no operation is treated as the start: draining is the reversible choice.
    action = phase === 'first' || phase === 'none' ? meaning.first : meaning.last;
    // A deletion or stop that failed may leave the instance in service: undo the drain once
    // Compute confirms it still runs (a group may be deleting it still).
    if (failed && action !== null) action = 'restore';
  } else {
    return reject('irrelevant', `method ${method} does not change instance membership`);
  }
  if (action === null) return reject('irrelevant', `${method} (${phase}) needs no action`);
  const target = parseInstancePath(entry.protoPayload.resourceName ?? '', project);
  if (!target) return reject('malformed', 'protoPayload.resourceName is not an instance path');
  const instanceId = labels.instance_id ?? '';
  if (!instanceIdPattern.test(instanceId))
    return reject('malformed', 'resource.labels.instance_id is missing or invalid');
  if (target.byId && target.name !== instanceId)
    return reject('malformed', `protoPayload.resourceName names instance ${target.name}, not ${instanceId}`);
  if (labels.zone !== undefined && labels.zone !== target.zone) {
    return reject('malformed', `resource.labels.zone ${labels.zone} disagrees with ${target.zone}`);
  }
  const event: InstanceEvent = { ...base, action, targets: [{ ...target, instanceId }] };
  return { ok: true, event: confirm ? { ...event, confirm } : event };
}

/** Decodes a Pub/Sub envelope (CloudEvent data or push body) and parses the entry inside. */
export function parsePubsubMessage(data: unknown): ParseResult {
  const decoded = decodePubsubMessage(data, maxEntryBytes);
  if (!decoded.ok) return { ok: false, outcome: 'malformed', reason: decoded.reason };
  let entry: unknown;
  try {
    entry = JSON.parse(decoded.text);
  } catch {
    return { ok: false, outcome: 'malformed', reason: 'message.data is not base64-encoded JSON' };
  }
  return parseLogEntry(entry);
}
