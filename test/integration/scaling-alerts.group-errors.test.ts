import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { createGcpClients } from '../../shared/gcp/client';
import { createGroupErrorsApi, groupRefOf } from '../../shared/gcp/groups';
import { startConsulDev, type ConsulDev } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';
import {
  actionPolicies,
  autoscaledGroup,
  buildHandler,
  buildLeaseSweep,
  functionToken,
  notification,
  policiesOnly,
  testRules,
  type Harness,
} from './scaling-alerts.support';

/**
 * A group that cannot grow (an injected QUOTA_EXCEEDED in the Compute emulator) against the real
 * Compute client and Consul: the group records the error in listErrors and keeps retrying; a floor
 * above what it has reached is refused (`unreachable_floor`); the lease pass publishes
 * `instance_creation_errors`; once the injection ends the group grows and the floor is raised.
 */
const zone = zones[0]!;
const mig = 'ilb-haproxy-mig';
const migPath = `projects/${project}/zones/${zone}/instanceGroupManagers/${mig}`;

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let h: Harness;
let sweep: ReturnType<typeof buildLeaseSweep>;
let condition = '';

const open = (id: string) =>
  notification({ id, state: 'open', action: 'raise-min', zone, project, condition });

async function group() {
  const [igm] = await c.igms.get({ project, zone, instanceGroupManager: mig });
  return { target: Number(igm.targetSize), creating: Number(igm.currentActions?.creating ?? 0) };
}

/** The emulator's injection route of a group (its path): the HTTP status. */
async function control(method: 'POST' | 'DELETE', body?: unknown, path = migPath) {
  const res = await fetch(`${emu.url}/emulator/v1/${path}/errors`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.status;
}

const series = (type: string) =>
  emu.monitoring.list({
    filter: `metric.type = "custom.googleapis.com/ilb/${type}"`,
    endTime: new Date(Date.now() + 1000).toISOString(),
    startTime: new Date(Date.now() - 600_000).toISOString(),
  }).timeSeries;

beforeAll(async () => {
  ({ emu } = await startTestEmulator({ alerting: policiesOnly }));
  condition = (await actionPolicies(emu.url, 'haproxy'))['raise-min']!;
  c = clients(emu.port);
  consul = await startConsulDev();
  const token = await functionToken(consul);
  await autoscaledGroup(c, 'ilb-haproxy');
  const rules = testRules(project, zone, { names: ['ilb-haproxy'] });
  h = buildHandler({ consul, token, computeUrl: emu.url, project, rules });
  sweep = buildLeaseSweep({ consul, token, computeUrl: emu.url, rules, metrics: true });
  // The group's first instance is up before any error is injected.
  expect(await emu.emulator.settled(20_000)).toBe(true);
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

test('the injection is validated and needs an existing group', async () => {
  expect(await control('POST', { code: 'quota exceeded' })).toBe(400);
  expect(await control('POST', { code: 'QUOTA_EXCEEDED', count: 1, until: new Date().toISOString() })).toBe(
    400,
  );
  expect(await control('POST', { code: 'QUOTA_EXCEEDED' }, migPath.replace(mig, 'nope'))).toBe(404);
});

test('QUOTA_EXCEEDED: the group records and retries, a floor above its size is refused; cleared, the floor is raised', async () => {
  expect(await group()).toEqual({ target: 1, creating: 0 });
  const message = "Quota 'CPUS' exceeded. Limit: 1.0 in region us-central1.";
  expect(await control('POST', { code: 'QUOTA_EXCEEDED', message })).toBe(200);

  // A first incident finds a group that can grow: its floor (min 1 + 2) is leased, GCE asks for 3.
  const first = await h.handle(open('0.quota1'));
  expect(first).toMatchObject({ results: [{ decision: 'applied', reason: 'escalate' }] });
  // …and the group cannot create them: the errors are recorded, the creations stay pending.
  await eventually(async () => {
    const g = await group();
    return g.target === 3 && g.creating === 2;
  }, 20_000);
  const [errors] = await c.igms.listErrors({ project, zone, instanceGroupManager: mig });
  expect(errors.length).toBeGreaterThanOrEqual(2);
  expect(errors[0]).toMatchObject({
    error: { code: 'QUOTA_EXCEEDED', message: expect.stringContaining('CPUS') as unknown },
    instanceActionDetails: {
      action: 'CREATING',
      instance: expect.stringContaining(`/zones/${zone}/instances/`) as unknown,
    },
  });
  const [instances] = await c.instances.list({ project, zone });
  expect(instances).toHaveLength(1);

  // A second incident asks for a floor the stuck group has not reached: refused, said and counted.
  const second = await h.handle(open('0.quota2'));
  expect(second).toMatchObject({
    results: [
      {
        decision: 'refused',
        reason: expect.stringMatching(
          /^unreachable-floor: ilb-haproxy-mig has 1 instances .*QUOTA_EXCEEDED/,
        ) as unknown,
      },
    ],
  });
  expect(h.logs).toContainEqual(
    expect.objectContaining({
      incidentId: '0.quota2',
      decision: 'refused',
      reason: expect.stringMatching(/^unreachable-floor/) as unknown,
    }),
  );
  expect(series('scaling_alerts/unreachable_floor').map((s) => s.metric.labels)).toEqual([{ group: mig }]);

  // The lease pass publishes the window's creation errors per group and code.
  await sweep({ dryRun: false });
  const published = series('instance_creation_errors');
  expect(published.map((s) => s.metric.labels)).toEqual([
    { group: mig, location: zone, code: 'QUOTA_EXCEEDED' },
  ]);

  // The injection ends: the group creates what it owed, and the refused incident's next notification raises its floor.
  expect(await control('DELETE')).toBe(200);
  await eventually(async () => (await group()).creating === 0, 20_000);
  expect((await group()).target).toBe(3);
  const again = await h.handle(open('0.quota2'));
  expect(again).toMatchObject({ results: [{ decision: 'applied', reason: 'escalate' }] });
});

test('a regional group: `count` failures then creations succeed; listErrors pages and is bounded', async () => {
  const region = 'us-central1';
  const name = 'ilb-regional-mig';
  const path = `projects/${project}/regions/${region}/instanceGroupManagers/${name}`;
  // Created empty, then injected before it creates anything.
  await c.regionIgms.insert({
    project,
    region,
    instanceGroupManagerResource: {
      name,
      baseInstanceName: 'ilb-regional',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 0,
    },
  });
  expect(await control('POST', { code: 'ZONE_RESOURCE_POOL_EXHAUSTED', count: 3 }, path)).toBe(200);
  await c.regionIgms.resize({ project, region, instanceGroupManager: name, size: 2 });
  const api = createGroupErrorsApi(
    createGcpClients({ apiEndpoint: '127.0.0.1', port: emu.port, protocol: 'http' }),
    { pageSize: 1 },
  );
  const ref = groupRefOf(path)!;
  // Three attempts fail, then both instances are created.
  await eventually(async () => (await api.listErrors(ref, { sinceMs: 0, maxPages: 10 })).errors.length >= 3);
  expect(await emu.emulator.settled(20_000)).toBe(true);
  expect(await api.size(ref)).toEqual({ targetSize: 2, creating: 0 });
  const all = await api.listErrors(ref, { sinceMs: 0, maxPages: 10 });
  expect(all.truncated).toBe(false);
  expect(all.errors.map((e) => [e.code, e.action])).toEqual(
    Array.from({ length: 3 }, () => ['ZONE_RESOURCE_POOL_EXHAUSTED', 'CREATING']),
  );
  expect(await api.listErrors(ref, { sinceMs: 0, maxPages: 2 })).toMatchObject({ truncated: true });
  expect((await api.listErrors(ref, { sinceMs: Date.now() + 60_000, maxPages: 10 })).errors).toEqual([]);
});
