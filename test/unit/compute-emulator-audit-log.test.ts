import { groupActivity, instanceActivity } from '../../infra-scripts/local/compute-emulator/audit-log';
import { eventFixture } from '../fixtures/events';

const common = { project: 'ilb-demo', at: new Date('2026-11-26T10:13:20.912Z'), insertId: 'x' };
const operation = { id: '5123', name: 'operation-1', operationType: 'delete', targetId: '4512' };
const byGroup = {
  ...common,
  methodName: 'v1.compute.instances.delete',
  principalEmail: '123456789012@cloudservices.gserviceaccount.com',
  userAgent: 'GCE Managed Instance Group',
  resourceProject: '123456789012',
  operation,
  zone: 'us-central1-f',
  instanceName: 'backend-7k2p',
  instanceId: '4512',
};

type Shape = {
  protoPayload: {
    resourceName: string;
    authorizationInfo?: { resourceAttributes: { name: string } }[];
    response?: { targetLink: string; zone: string };
    status?: unknown;
  };
  resource: { labels: Record<string, string> };
  severity: string;
};

test('a group-initiated entry names the project by number in resourceName and authorizationInfo, as the fixtures do', () => {
  const first = instanceActivity({ ...byGroup, phase: 'first' }) as unknown as Shape;
  const fixture = eventFixture('audit-instance-delete-first.json') as unknown as Shape;
  expect(first.protoPayload.resourceName).toBe(fixture.protoPayload.resourceName);
  expect(first.protoPayload.authorizationInfo?.[0]?.resourceAttributes.name).toBe(
    fixture.protoPayload.resourceName,
  );
  expect(first.protoPayload.response?.targetLink).toBe(fixture.protoPayload.response?.targetLink);
  expect(first.protoPayload.response?.zone).toBe(fixture.protoPayload.response?.zone);
  expect(first.resource.labels.project_id).toBe('ilb-demo');
});

test("a person's entry keeps the project id", () => {
  const last = instanceActivity({
    ...byGroup,
    principalEmail: 'alice@example.com',
    userAgent: 'gcloud',
    resourceProject: undefined,
    phase: 'last',
  }) as unknown as Shape;
  expect(last.protoPayload.resourceName).toBe('projects/ilb-demo/zones/us-central1-f/instances/backend-7k2p');
});

test("a failed operation's last entry carries the status and severity ERROR; the first does not", () => {
  const g = {
    ...common,
    methodName: 'v1.compute.instanceGroupManagers.deleteInstances',
    principalEmail: 'alice@example.com',
    userAgent: 'gcloud',
    operation,
    scope: { kind: 'zones' as const, name: 'us-central1-f' },
    igmName: 'backend',
    igmId: '77',
    request: { instances: ['stranger'] },
  };
  const failure = { code: 3, message: 'not a member' };
  const last = groupActivity({ ...g, phase: 'last', failure }) as unknown as Shape;
  expect(last.protoPayload.status).toEqual(failure);
  expect(last.severity).toBe('ERROR');
  const ok = groupActivity({ ...g, phase: 'first' }) as unknown as Shape;
  expect(ok.protoPayload.status).toBeUndefined();
  expect(ok.severity).toBe('NOTICE');
});
