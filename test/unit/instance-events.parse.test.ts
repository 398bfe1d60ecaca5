import { parseLogEntry, parsePubsubMessage } from '../../shared/instance-events/parse';
import { eventFixture } from '../fixtures/events';

const fixture = (name: string) => eventFixture(name);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

type Json = Record<string, unknown>;
const clone = <T>(v: T): T => structuredClone(v);
const withPayload = (entry: Json, payload: Json): Json => ({
  ...entry,
  protoPayload: { ...(entry.protoPayload as Json), ...payload },
});

describe('parseLogEntry on the fixtures', () => {
  it('reads a deletion start as a drain of that instance id', () => {
    const result = parseLogEntry(fixture('audit-instance-delete-first.json'));
    expect(result).toEqual({
      ok: true,
      event: {
        id: '-9x1k2fe3a7yb/operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e-5f6a7b8c/first',
        insertId: '-9x1k2fe3a7yb',
        operationId: 'operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e-5f6a7b8c',
        phase: 'first',
        method: 'compute.instances.delete',
        action: 'drain',
        time: Date.parse('2026-11-26T10:13:20.912Z'),
        targets: [
          {
            project: 'ilb-demo',
            zone: 'us-central1-f',
            name: 'backend-7k2p',
            instanceId: '4512345678901234567',
          },
        ],
      },
    });
  });

  it('reads the deletion end as a removal, later than its start', () => {
    const first = parseLogEntry(fixture('audit-instance-delete-first.json'));
    const last = parseLogEntry(fixture('audit-instance-delete-last.json'));
    if (!first.ok || !last.ok) throw new Error('fixtures must parse');
    expect(last.event.action).toBe('remove');
    expect(last.event.phase).toBe('last');
    expect(last.event.time).toBeGreaterThan(first.event.time);
    expect(last.event.id).not.toBe(first.event.id);
  });

  it('reads a preemption system event (first and last at once) as a removal', () => {
    const result = parseLogEntry(fixture('audit-instance-preempted.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.event).toMatchObject({
      phase: 'single',
      method: 'compute.instances.preempted',
      action: 'remove',
      targets: [{ name: 'haproxy-q9zt', zone: 'us-central1-b', instanceId: '7712345678901234501' }],
    });
  });

  it('decodes the structured CloudEvent fixture down to the same entry as the raw fixture', () => {
    const cloudEvent = fixture('cloudevent-pubsub-instance-delete-last.json');
    expect(parsePubsubMessage(cloudEvent.data)).toEqual(
      parseLogEntry(fixture('audit-instance-delete-last.json')),
    );
  });
});

describe('parseLogEntry method table', () => {
  const base = fixture('audit-instance-delete-first.json');
  const op = (first: boolean, last: boolean) => ({ id: 'operation-1', first, last });
  const cases: [string, { first: boolean; last: boolean }, string | null][] = [
    ['v1.compute.instances.delete', { first: false, last: true }, 'remove'],
    ['v1.compute.instances.stop', { first: true, last: false }, 'drain'],
    ['v1.compute.instances.stop', { first: false, last: true }, 'remove'],
    ['beta.compute.instances.suspend', { first: true, last: false }, 'drain'],
    ['v1.compute.instances.suspend', { first: false, last: true }, 'remove'],
    ['v1.compute.instances.insert', { first: true, last: false }, null],
    ['v1.compute.instances.insert', { first: false, last: true }, 'restore'],
    ['v1.compute.instances.start', { first: false, last: true }, 'restore'],
    ['v1.compute.instances.resume', { first: false, last: true }, 'restore'],
    ['compute.instances.hostError', { first: true, last: true }, 'remove'],
    ['compute.instances.guestTerminate', { first: true, last: true }, 'remove'],
    ['compute.instances.terminateOnHostMaintenance', { first: true, last: true }, 'remove'],
    ['compute.instances.repair.recreateInstance', { first: true, last: true }, 'remove'],
    ['v1.compute.instances.setMetadata', { first: true, last: true }, null],
  ];
  it.each(cases)('%s %j → %s', (methodName, phase, action) => {
    const entry = { ...withPayload(base, { methodName }), operation: op(phase.first, phase.last) };
    const result = parseLogEntry(entry);
    if (action === null) expect(result).toMatchObject({ ok: false, outcome: 'irrelevant' });
    else expect(result).toMatchObject({ ok: true, event: { action } });
  });

  it('treats a failed deletion as the instance staying in service', () => {
    const entry = withPayload(fixture('audit-instance-delete-last.json'), {
      status: { code: 9, message: 'failed' },
    });
    expect(parseLogEntry(entry)).toMatchObject({ ok: true, event: { action: 'restore' } });
  });

  it('accepts a system_event entry whose status carries only a message', () => {
    const entry = fixture('audit-instance-preempted.json');
    expect(parseLogEntry(entry)).toMatchObject({ ok: true });
  });
});

describe('MIG-level entries', () => {
  const migEntry = (method: string, first: boolean, last: boolean, instances: unknown): Json => ({
    insertId: 'mig-1',
    logName: 'projects/ilb-demo/logs/cloudaudit.googleapis.com%2Factivity',
    timestamp: '2026-11-26T10:13:00Z',
    operation: { id: 'operation-mig', first, last },
    resource: {
      type: 'gce_instance_group_manager',
      labels: {
        instance_group_manager_name: 'backend-mig',
        location: 'us-central1-f',
        project_id: 'ilb-demo',
      },
    },
    protoPayload: {
      methodName: method,
      resourceName: 'projects/ilb-demo/zones/us-central1-f/instanceGroupManagers/backend-mig',
      request: { '@type': 'type.googleapis.com/compute.x', instances },
    },
  });

  // The sink carries gce_instance entries only; a group's deletions arrive as each instance's own
  // compute.instances.delete (by the group's service agent), which drain once Compute confirms.
  it.each([
    ['v1.compute.instanceGroupManagers.deleteInstances', true, false],
    ['v1.compute.instanceGroupManagers.recreateInstances', true, false],
    ['v1.compute.instanceGroupManagers.abandonInstances', false, true],
    ['v1.compute.regionInstanceGroupManagers.deleteInstances', true, false],
    ['beta.compute.regionInstanceGroupManagers.abandonInstances', true, true],
    ['v1.compute.instanceGroupManagers.resize', true, false],
  ])('%s (first %s, last %s) is irrelevant: no drain from a group entry', (method, first, last) => {
    const result = parseLogEntry(
      migEntry(method, first, last, ['zones/us-central1-f/instances/backend-a', 'backend-b']),
    );
    expect(result).toMatchObject({ ok: false, outcome: 'irrelevant' });
    if (!result.ok) expect(result.reason).toMatch(/gce_instance_group_manager is not gce_instance/);
  });
});

describe('malformed and irrelevant input', () => {
  const base = fixture('audit-instance-delete-last.json');
  const mutations: [string, 'malformed' | 'irrelevant', (e: Json) => unknown][] = [
    ['not an object', 'malformed', () => 'hello'],
    ['null', 'malformed', () => null],
    ['no insertId', 'malformed', (e) => ({ ...e, insertId: undefined })],
    ['bad timestamp', 'malformed', (e) => ({ ...e, timestamp: 'yesterday' })],
    ['no protoPayload', 'malformed', (e) => ({ ...e, protoPayload: null })],
    [
      'no instance id',
      'malformed',
      (e) => ({
        ...e,
        resource: { type: 'gce_instance', labels: { project_id: 'ilb-demo', zone: 'us-central1-f' } },
      }),
    ],
    [
      'non-numeric instance id',
      'malformed',
      (e) => ({
        ...e,
        resource: {
          type: 'gce_instance',
          labels: { project_id: 'ilb-demo', zone: 'us-central1-f', instance_id: 'abc' },
        },
      }),
    ],
    [
      'zone label disagreeing with the resource name',
      'malformed',
      (e) => ({
        ...e,
        resource: {
          type: 'gce_instance',
          labels: { project_id: 'ilb-demo', zone: 'europe-west1-b', instance_id: '1' },
        },
      }),
    ],
    [
      'resource name not an instance',
      'malformed',
      (e) => withPayload(e, { resourceName: 'projects/ilb-demo/global/networks/default' }),
    ],
    [
      'data access log',
      'irrelevant',
      (e) => ({ ...e, logName: 'projects/ilb-demo/logs/cloudaudit.googleapis.com%2Fdata_access' }),
    ],
    ['another service', 'irrelevant', (e) => withPayload(e, { methodName: 'storage.objects.delete' })],
  ];
  it.each(mutations)('%s → %s', (_name, outcome, mutate) => {
    const result = parseLogEntry(mutate(clone(base)));
    expect(result).toMatchObject({ ok: false, outcome });
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(5);
  });

  it('accepts nulls and extra fields where Google documents optional fields', () => {
    const entry: Json = { ...clone(base), receiveTimestamp: null, severity: null, extra: { any: 1 } };
    (entry.operation as Json).producer = null;
    expect(parseLogEntry(entry)).toMatchObject({ ok: true });
  });

  it.each([
    ['no message', {}],
    ['data not base64', { message: { data: '{not base64}', messageId: '1' } }],
    ['base64 but not JSON', { message: { data: Buffer.from('plain text').toString('base64') } }],
    ['JSON but not a log entry', { message: { data: b64({ hello: 'world' }) } }],
  ])('Pub/Sub envelope: %s is malformed', (_name, data) => {
    expect(parsePubsubMessage(data)).toMatchObject({ ok: false, outcome: 'malformed' });
  });
});

describe('project ids and project numbers (Google logs a MIG’s own calls with the number)', () => {
  it('a MIG’s own deletion names the project by number and still targets the labelled project', () => {
    const entry = fixture('audit-instance-delete-last.json');
    expect((entry.protoPayload as Json).resourceName).toMatch(/^projects\/\d+\//);
    expect(parseLogEntry(entry)).toMatchObject({
      ok: true,
      event: { action: 'remove', targets: [{ project: 'ilb-demo', name: 'backend-7k2p' }] },
    });
  });

  it('a person’s gcloud deletion names the project by id', () => {
    expect(parseLogEntry(fixture('audit-instance-delete-by-user-last.json'))).toMatchObject({
      ok: true,
      event: {
        action: 'remove',
        targets: [
          {
            project: 'ilb-demo',
            zone: 'us-central1-c',
            name: 'frontend-2x8q',
            instanceId: '3312345678901234599',
          },
        ],
      },
    });
  });

  it('refuses a resource name in another project id than the labels say', () => {
    const entry = withPayload(fixture('audit-instance-delete-by-user-last.json'), {
      resourceName: 'projects/other-project/zones/us-central1-c/instances/frontend-2x8q',
    });
    expect(parseLogEntry(entry)).toMatchObject({ ok: false, outcome: 'malformed' });
  });

  it('reads automaticRestart as a restore, and system removals as needing confirmation', () => {
    const restart = withPayload(clone(fixture('audit-instance-preempted.json')), {
      methodName: 'compute.instances.automaticRestart',
    });
    expect(parseLogEntry(restart)).toMatchObject({ ok: true, event: { action: 'restore' } });
    expect(parseLogEntry(fixture('audit-instance-preempted.json'))).toMatchObject({
      ok: true,
      event: { action: 'remove', confirm: 'gone' },
    });
  });

  it('accepts an instance named by its numeric id, which must be the labelled id', () => {
    const entry = fixture('audit-instance-delete-last.json') as Json;
    const byId = withPayload(clone(entry), {
      resourceName: 'projects/123456789012/zones/us-central1-f/instances/4512345678901234567',
    });
    expect(parseLogEntry(byId)).toMatchObject({
      ok: true,
      event: { targets: [{ name: '4512345678901234567', byId: true, instanceId: '4512345678901234567' }] },
    });
    const other = withPayload(clone(entry), {
      resourceName: 'projects/123456789012/zones/us-central1-f/instances/4512345678901234999',
    });
    expect(parseLogEntry(other)).toMatchObject({ ok: false, outcome: 'malformed' });
  });

  it('refuses a message larger than a log entry can be, before decoding it', () => {
    const data = 'A'.repeat(400 * 1024);
    expect(parsePubsubMessage({ message: { data } })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/exceeds/),
    });
  });
});
