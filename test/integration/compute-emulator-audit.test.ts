import { Duration, PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { pubsubSink, sinkCarries, type RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { parseLogEntry } from '../../shared/instance-events/parse';
import { eventFixture } from '../fixtures/events';
import { startPubsubEmulator, type PubsubEmulator } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';

const zone = zones[0]!;
const fixture = (name: string) => eventFixture(name);

let pstest: PubsubEmulator;
let pubsub: PubSub;
let sub: Subscription;
let sink: ReturnType<typeof pubsubSink>;
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
const received: Record<string, unknown>[] = [];

beforeAll(async () => {
  pstest = await startPubsubEmulator();
  pubsub = new PubSub({ projectId: project, apiEndpoint: pstest.host, emulatorMode: true });
  const [topic] = await pubsub.createTopic('instance-events');
  await topic.createSubscription('audit-test');
  sub = topic.subscription('audit-test', {
    closeOptions: { behavior: 'NACK', timeout: Duration.from({ seconds: 2 }) },
  });
  sub.on('message', (m: Message) => {
    received.push(JSON.parse(m.data.toString('utf8')) as Record<string, unknown>);
    expect(m.attributes['logging.googleapis.com/timestamp']).toBeDefined();
    m.ack();
  });
  // Every entry the emulator logs, the group's own too: what the sink forwards is checked apart.
  sink = pubsubSink({
    projectId: project,
    topic: 'instance-events',
    emulatorHost: pstest.host,
    carries: () => true,
  });
  ({ emu } = await startTestEmulator({ audit: sink.write }));
  c = clients(emu.port);
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await sink?.close();
  await sub?.close();
  await pubsub?.close();
  await pstest?.stop();
});

type Entry = {
  logName: string;
  severity: string;
  operation: { id: string; first?: boolean; last?: boolean; producer: string };
  protoPayload: {
    methodName: string;
    resourceName: string;
    request?: { instances?: string[] };
    authenticationInfo: { principalEmail: string };
    authorizationInfo?: { resourceAttributes: { name: string } }[];
    requestMetadata: { callerSuppliedUserAgent: string };
    status?: { code: number; message: string };
  };
  resource: { type: string; labels: Record<string, string> };
};
const entries = () => received as unknown as Entry[];
const byMethod = (m: string) => entries().filter((e) => e.protoPayload.methodName === m);

/** Every key path of a JSON value, e.g. `protoPayload.response.targetId`. */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [prefix];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) =>
    keyPaths(x, prefix ? `${prefix}.${k}` : k),
  );
}

test('a MIG creating and deleting an instance writes insert and delete entries, a first and a last each, with the fixtures shape', async () => {
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'backend',
      baseInstanceName: 'backend',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 1,
    },
  });
  await eventually(() => byMethod('v1.compute.instances.insert').length === 2);
  // Pub/Sub does not keep publish order: which is which says the entry itself.
  const inserts = byMethod('v1.compute.instances.insert');
  const first = inserts.find((e) => e.operation.first);
  const last = inserts.find((e) => e.operation.last);
  expect(first).toBeDefined();
  expect(last).toBeDefined();
  expect(first!.operation.id).toBe(last!.operation.id);
  const [mi] = (await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend' }))[0];
  expect(first!.resource.labels).toEqual({ instance_id: mi!.id, project_id: project, zone });
  // The group acts on its own: GCE names the project by its number there, the labels keep the id.
  const number = emu.emulator.projectNumber;
  expect(first!.protoPayload.resourceName).toBe(`projects/${number}/zones/${zone}/instances/${mi!.name}`);
  expect(first!.protoPayload.authorizationInfo?.[0]?.resourceAttributes.name).toBe(
    first!.protoPayload.resourceName,
  );
  expect(first!.protoPayload.authenticationInfo.principalEmail).toBe(
    `${number}@cloudservices.gserviceaccount.com`,
  );
  expect(first!.protoPayload.requestMetadata.callerSuppliedUserAgent).toBe('GCE Managed Instance Group');

  await c.igms.deleteInstances({
    project,
    zone,
    instanceGroupManager: 'backend',
    instanceGroupManagersDeleteInstancesRequestResource: { instances: [mi!.instance!] },
  });
  await eventually(() => byMethod('v1.compute.instances.delete').length === 2);
  const deletes = byMethod('v1.compute.instances.delete');
  const delFirst = deletes.find((e) => e.operation.first);
  const delLast = deletes.find((e) => e.operation.last);
  // Same fields as Google's entries (values differ): the function's parser sees what production sends.
  expect(keyPaths(delFirst).sort()).toEqual(keyPaths(fixture('audit-instance-delete-first.json')).sort());
  expect(keyPaths(delLast).sort()).toEqual(keyPaths(fixture('audit-instance-delete-last.json')).sort());
  expect(delFirst!.resource.labels.instance_id).toBe(mi!.id);
  // `operation.id` is the Compute operation's name, as in Google's entries: zoneOperations.get
  // reads it, with the type and the target id instanceEvents confirms a drain by.
  const [zoneOp] = await c.zoneOps.get({ project, zone, operation: delFirst!.operation.id });
  expect(zoneOp).toMatchObject({ name: delFirst!.operation.id, operationType: 'delete', targetId: mi!.id });
  expect(delLast!.protoPayload.resourceName).toBe(
    `projects/${emu.emulator.projectNumber}/zones/${zone}/instances/${mi!.name}`,
  );
  await eventually(() => byMethod('v1.compute.instanceGroupManagers.deleteInstances').length === 2);
  const group = byMethod('v1.compute.instanceGroupManagers.deleteInstances');
  expect(group.map((e) => (e.operation.first ? 'first' : 'last')).sort()).toEqual(['first', 'last']);
  expect(group[0]!.resource.type).toBe('gce_instance_group_manager');
  expect(group[0]!.protoPayload.request?.instances).toEqual([mi!.instance]);
  // The sink, the emulator and the parser agree: the group's entries are not forwarded (and would be
  // ignored); the instance's own delete entries, by the group's service agent, are, and drain/remove.
  for (const e of group) {
    expect(sinkCarries(e as unknown as Record<string, unknown>)).toBe(false);
    expect(parseLogEntry(e)).toMatchObject({ ok: false, outcome: 'irrelevant' });
  }
  expect(sinkCarries(delFirst as unknown as Record<string, unknown>)).toBe(true);
  expect(parseLogEntry(delFirst)).toMatchObject({ ok: true, event: { action: 'drain' } });
  expect(parseLogEntry(delLast)).toMatchObject({ ok: true, event: { action: 'remove' } });
});

test('preemption is a system_event entry, then the MIG repair recreates the name with a new id', async () => {
  const [op] = await c.igms.resize({ project, zone, instanceGroupManager: 'backend', size: 1 });
  await c.zoneOps.wait({ project, zone, operation: (op.latestResponse as { name: string }).name });
  await eventually(async () => {
    const [items] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend' });
    return items.length === 1 && items[0]!.instanceStatus === 'RUNNING';
  });
  const [[victim]] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend' });
  await fetch(`${emu.url}/emulator/v1/projects/${project}/zones/${zone}/instances/${victim!.name}/preempt`, {
    method: 'POST',
  });
  await eventually(() => byMethod('compute.instances.preempted').length === 1);
  const [preempted] = byMethod('compute.instances.preempted');
  expect(keyPaths(preempted).sort()).toEqual(keyPaths(fixture('audit-instance-preempted.json')).sort());
  expect(preempted!.logName).toBe(`projects/${project}/logs/cloudaudit.googleapis.com%2Fsystem_event`);
  expect(preempted!.operation).toMatchObject({
    first: true,
    last: true,
    producer: 'compute.instances.preempted',
  });
  expect(preempted!.resource.labels.instance_id).toBe(victim!.id);

  await eventually(() => byMethod('compute.instances.repair.recreateInstance').length === 1);
  await eventually(() =>
    byMethod('v1.compute.instances.insert').some(
      (e) =>
        e.operation.last &&
        e.protoPayload.resourceName.endsWith(`/${victim!.name}`) &&
        e.resource.labels.instance_id !== victim!.id,
    ),
  );
});

test("a person's instances.delete names the project by its id; a refused group request's last entry carries the failure", async () => {
  await eventually(async () => {
    const [items] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend' });
    return items.length === 1 && items[0]!.instanceStatus === 'RUNNING';
  });
  const [[member]] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'backend' });
  const [del] = await c.instances.delete({ project, zone, instance: member!.name! });
  await c.zoneOps.wait({ project, zone, operation: (del.latestResponse as { name: string }).name });
  const byUser = () =>
    byMethod('v1.compute.instances.delete').filter(
      (e) => e.resource.labels.instance_id === member!.id && e.operation.last,
    );
  await eventually(() => byUser().length === 1);
  expect(byUser()[0]!.protoPayload.resourceName).toBe(
    `projects/${project}/zones/${zone}/instances/${member!.name}`,
  );
  expect(byUser()[0]!.protoPayload.authenticationInfo.principalEmail).not.toContain('cloudservices');

  const [op] = await c.igms.abandonInstances({
    project,
    zone,
    instanceGroupManager: 'backend',
    instanceGroupManagersAbandonInstancesRequestResource: { instances: [`zones/${zone}/instances/stranger`] },
  });
  await c.zoneOps.wait({ project, zone, operation: (op.latestResponse as { name: string }).name });
  const abandon = () => byMethod('v1.compute.instanceGroupManagers.abandonInstances');
  await eventually(() => abandon().length === 2);
  const [first, last] = abandon();
  expect(first!.operation.first).toBe(true);
  expect(first!.protoPayload.status).toBeUndefined();
  expect(last!.operation.last).toBe(true);
  expect(last!.severity).toBe('ERROR');
  expect(last!.protoPayload.status).toMatchObject({ code: 3 });
  expect(last!.protoPayload.status!.message).toContain('stranger');
});
