import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { TransientError } from '../../shared/errors';
import { stateKey } from '../../shared/scaling-alerts/state';
import { startConsulDev, type ConsulDev } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';
import {
  alertPolicy,
  autoscaledGroup,
  buildHandler,
  buildLeaseSweep,
  functionToken,
  modifications as countModifications,
  notification,
  policiesOnly,
  readRecord,
  testRules,
  type Harness,
} from './scaling-alerts.support';

/**
 * A GCE that never activates a schedule whose start is already past (the emulator's
 * `pastScheduleStart: 'never'`): the floor is read back as not ACTIVE and held by minNumReplicas
 * instead, recorded in KV and restored on close; a delivery lost after the write is caught by the
 * lease pass, which also restores the minimum when the lease expires.
 */
const zone = zones[0]!;
const kvPrefix = 'gce-ilb-orchestrator/';
const owned = { project, zone, name: 'ilb-haproxy' };
const scheduleCheck = { boundMs: 2000, intervalMs: 400 };

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let token: string;
let h: Harness;

async function autoscaler() {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-haproxy' });
  return a;
}

const record = () => readRecord(h.admin, stateKey(kvPrefix, owned));
const modifications = () => countModifications(c, 'ilb-haproxy');

const groupSize = async () => {
  const [igm] = await c.igms.get({ project, zone, instanceGroupManager: 'ilb-haproxy-mig' });
  return Number(igm.targetSize);
};

const rules = () => testRules(project, zone, { names: ['ilb-haproxy'] });
let condition = '';
const open = (id: string) =>
  notification({ id, state: 'open', action: 'raise-min', zone, project, condition });
const closed = (id: string) =>
  notification({ id, state: 'closed', action: 'raise-min', zone, project, condition });

beforeAll(async () => {
  ({ emu } = await startTestEmulator({ pastScheduleStart: 'never', alerting: policiesOnly }));
  condition = await alertPolicy(emu.url, { tier: 'haproxy', action: 'raise-min' });
  c = clients(emu.port);
  consul = await startConsulDev();
  token = await functionToken(consul);
  await autoscaledGroup(c, 'ilb-haproxy');
  h = buildHandler({ consul, token, computeUrl: emu.url, project, rules: rules(), scheduleCheck });
}, 60_000);

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

test('the schedule never reads ACTIVE: minNumReplicas holds the floor, recorded; a duplicate acts once; closed restores it', async () => {
  const before = await modifications();
  const first = await h.handle(open('0.never1'));
  expect(first).toMatchObject({ results: [{ decision: 'applied', reason: 'fallback' }] });
  const a = await autoscaler();
  const names = Object.keys(a.autoscalingPolicy?.scalingSchedules ?? {});
  expect(names).toHaveLength(1);
  expect(a.scalingScheduleStatus?.[names[0]!]?.state).toBe('OBSOLETE');
  expect(a.autoscalingPolicy?.minNumReplicas).toBe(3);
  expect(await record()).toMatchObject({ original: { minNumReplicas: 1 } });
  expect(h.logs.some((l) => l.action === 'raise-min' && /^schedule-inactive/.test(String(l.reason)))).toBe(
    true,
  );
  expect(await modifications()).toBe(before + 2);
  // GCE applies the raised minimum: the group grows to the leased floor.
  await eventually(async () => (await groupSize()) >= 3, 20_000);

  expect(await h.handle(open('0.never1'))).toMatchObject({
    results: [{ decision: 'noop', reason: 'lease-current' }],
  });
  expect(await modifications()).toBe(before + 2);

  const done = await h.handle(closed('0.never1'));
  expect(done).toMatchObject({ results: [{ decision: 'applied', reason: 'revert' }] });
  const after = await autoscaler();
  expect(after.autoscalingPolicy?.minNumReplicas).toBe(1);
  expect(Object.keys(after.autoscalingPolicy?.scalingSchedules ?? {})).toEqual([]);
  expect((await record())?.original).toEqual({});
  expect(await modifications()).toBe(before + 3);
});

test('a delivery lost after the write: the lease pass falls back, and restores the minimum when the lease expires', async () => {
  let lose = true;
  const lossy = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: rules(),
    scheduleCheck,
    autoscalers: (real) => ({
      ...real,
      async apply(ref, current, patch, requestId) {
        const applied = await real.apply(ref, current, patch, requestId);
        if (lose) {
          lose = false;
          throw new TransientError('the function died after the write');
        }
        return applied;
      },
    }),
  });
  await expect(lossy.handle(open('0.never2'))).rejects.toThrow(/died/);
  expect((await autoscaler()).autoscalingPolicy?.minNumReplicas).toBe(1);

  const sweep = (now?: () => number) =>
    buildLeaseSweep({ consul, token, computeUrl: emu.url, rules: rules(), now, scheduleCheck });
  // Past the bound, the schedule still not ACTIVE.
  await new Promise((r) => setTimeout(r, scheduleCheck.boundMs + 200));
  const pass = await sweep()({ dryRun: false });
  expect(pass).toEqual([expect.objectContaining({ decision: 'applied', reason: 'fallback' })]);
  expect((await autoscaler()).autoscalingPolicy?.minNumReplicas).toBe(3);
  expect((await record())?.original).toEqual({ minNumReplicas: 1 });

  const later = Date.now() + 2 * 3600_000;
  const expiry = sweep(() => later);
  expect(await expiry({ dryRun: false })).toEqual([
    expect.objectContaining({ decision: 'applied', reason: 'revert' }),
  ]);
  const after = await autoscaler();
  expect(after.autoscalingPolicy?.minNumReplicas).toBe(1);
  expect(Object.keys(after.autoscalingPolicy?.scalingSchedules ?? {})).toEqual([]);
  expect((await record())?.original).toEqual({});
  expect((await expiry({ dryRun: false })).filter((o) => o.decision === 'applied')).toEqual([]);
});
