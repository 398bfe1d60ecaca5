/** Autoscaler PATCH/UPDATE as GCE has them, and scaling schedules, through the real client and raw HTTP. */
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import {
  clients,
  eventually,
  googleError,
  project,
  startTestEmulator,
  zones,
} from './compute-emulator-helpers';

const zone = zones[0]!;
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  ({ emu } = await startTestEmulator());
  c = clients(emu.port);
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'web',
      baseInstanceName: 'web',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 1,
    },
  });
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
});

const wait = async (op: { latestResponse: unknown }) => {
  const [done] = await c.zoneOps.wait({
    project,
    zone,
    operation: (op.latestResponse as { name: string }).name,
  });
  return done;
};
const get = async () => (await c.autoscalers.get({ project, zone, autoscaler: 'web-as' }))[0];
const raw = (method: string, query: string, body: unknown) =>
  fetch(`${emu.url}/compute/v1/projects/${project}/zones/${zone}/autoscalers?${query}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

test('a policy with no signal scales on CPU at 0.6; schedules, stabilization and load balancing are kept', async () => {
  await wait(
    (
      await c.autoscalers.insert({
        project,
        zone,
        autoscalerResource: {
          name: 'web-as',
          target: `projects/${project}/zones/${zone}/instanceGroupManagers/web`,
          autoscalingPolicy: { maxNumReplicas: 4, mode: 'OFF' },
        },
      })
    )[0],
  );
  expect((await get()).autoscalingPolicy?.cpuUtilization?.utilizationTarget).toBe(0.6);

  await wait(
    (
      await c.autoscalers.patch({
        project,
        zone,
        autoscaler: 'web-as',
        autoscalerResource: {
          autoscalingPolicy: {
            stabilizationPeriodSec: 120,
            loadBalancingUtilization: { utilizationTarget: 0.7 },
            scalingSchedules: {
              night: {
                minRequiredReplicas: 2,
                schedule: '0 1 * * *',
                durationSec: 3600,
                timeZone: 'Europe/Berlin',
              },
            },
          },
        },
      })
    )[0],
  );
  // A second patch of one nested field merges into the schedule instead of replacing it.
  await wait(
    (
      await c.autoscalers.patch({
        project,
        zone,
        autoscaler: 'web-as',
        autoscalerResource: {
          autoscalingPolicy: { maxNumReplicas: 5, scalingSchedules: { night: { minRequiredReplicas: 3 } } },
        },
      })
    )[0],
  );
  const p = (await get()).autoscalingPolicy!;
  expect(p).toMatchObject({
    maxNumReplicas: 5,
    mode: 'OFF',
    stabilizationPeriodSec: 120,
    loadBalancingUtilization: { utilizationTarget: 0.7 },
    cpuUtilization: { utilizationTarget: 0.6 },
  });
  expect(p.scalingSchedules?.night).toMatchObject({
    minRequiredReplicas: 3,
    schedule: '0 1 * * *',
    durationSec: 3600,
    timeZone: 'Europe/Berlin',
  });
});

test('raw PATCH: null deletes a key; unknown fields, bad schedules and non-UUID request ids are 400s', async () => {
  const removed = await raw('PATCH', 'autoscaler=web-as', {
    autoscalingPolicy: { scalingSchedules: { night: null }, stabilizationPeriodSec: null },
  });
  expect(removed.status).toBe(200);
  const { name: opName } = (await removed.json()) as { name: string };
  await c.zoneOps.wait({ project, zone, operation: opName });
  expect((await get()).autoscalingPolicy?.scalingSchedules?.night).toBeUndefined();
  expect((await get()).autoscalingPolicy?.stabilizationPeriodSec).toBeFalsy();

  for (const body of [
    { autoscalingPolicy: { maxNumReplicas: 3, surprise: true } },
    { unknownTopLevel: 1 },
    {
      autoscalingPolicy: {
        scalingSchedules: { s: { minRequiredReplicas: 1, schedule: '0 1 * *', durationSec: 300 } },
      },
    },
    {
      autoscalingPolicy: {
        scalingSchedules: { s: { minRequiredReplicas: 1, schedule: '0 1 * * *', durationSec: 60 } },
      },
    },
    {
      autoscalingPolicy: {
        scalingSchedules: {
          s: { minRequiredReplicas: 1, schedule: '0 1 * * *', durationSec: 300, timeZone: 'Mars/Base' },
        },
      },
    },
  ]) {
    const res = await raw('PATCH', 'autoscaler=web-as', body);
    const reason = ((await res.json()) as { error?: { errors?: { reason?: string }[] } }).error?.errors?.[0]
      ?.reason;
    expect({ body, status: res.status, reason }).toEqual({ body, status: 400, reason: 'invalid' });
  }

  const badId = await c.autoscalers
    .patch({ project, zone, autoscaler: 'web-as', requestId: 'retry-1', autoscalerResource: {} })
    .catch((e: unknown) => e);
  expect(googleError(badId)).toEqual({ code: 400, reasons: ['invalid'] });
  const zero = await raw('PATCH', 'autoscaler=web-as&requestId=00000000-0000-0000-0000-000000000000', {});
  expect(zero.status).toBe(400);
  expect(JSON.stringify(await zero.json())).toContain('zero UUID');
  const id = '8f0c2f4e-3b1a-4c6e-9d2f-1a2b3c4d5e6f';
  const [first] = await c.autoscalers.patch({
    project,
    zone,
    autoscaler: 'web-as',
    requestId: id,
    autoscalerResource: {},
  });
  const [again] = await c.autoscalers.patch({
    project,
    zone,
    autoscaler: 'web-as',
    requestId: id,
    autoscalerResource: {},
  });
  expect((again.latestResponse as { name: string }).name).toBe(
    (first.latestResponse as { name: string }).name,
  );
  await wait(first);
});

test('update replaces the policy, and a schedule active now raises the group to its minRequiredReplicas', async () => {
  const now = new Date();
  const thisMinute = `${now.getUTCMinutes()} ${now.getUTCHours()} ${now.getUTCDate()} ${now.getUTCMonth() + 1} *`;
  await wait(
    (
      await c.autoscalers.update({
        project,
        zone,
        autoscaler: 'web-as',
        autoscalerResource: {
          name: 'web-as',
          autoscalingPolicy: {
            minNumReplicas: 1,
            maxNumReplicas: 4,
            scalingSchedules: {
              now: { minRequiredReplicas: 3, schedule: thisMinute, durationSec: 300 },
              ignored: { minRequiredReplicas: 4, schedule: thisMinute, durationSec: 300, disabled: true },
            },
          },
        },
      })
    )[0],
  );
  const a = await get();
  expect(a.autoscalingPolicy?.stabilizationPeriodSec).toBeFalsy();
  expect(a.autoscalingPolicy?.loadBalancingUtilization).toBeFalsy();
  await eventually(async () => {
    const [g] = await c.igms.get({ project, zone, instanceGroupManager: 'web' });
    return g.targetSize === 3;
  });
  const status = (await get()).scalingScheduleStatus ?? {};
  expect(status.now?.state).toBe('ACTIVE');
  expect(status.ignored?.state).toBe('DISABLED');
});
