import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { TransientError } from '../../shared/errors';
import { stateKey } from '../../shared/scaling-alerts/state';
import { startConsulDev, type ConsulDev } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';
import {
  actionPolicies,
  alertPolicy,
  autoscaledGroup,
  buildHandler,
  functionToken,
  modifications as countModifications,
  notification,
  policiesOnly,
  readRecord,
  testRules,
  type Harness,
} from './scaling-alerts.support';

/**
 * scalingAlerts end to end against the real Compute client on the Compute emulator and a real
 * Consul agent with the function's ACL token: open → change, duplicates act once, closed → revert,
 * closed before open, a concurrent operation (resourceNotReady), an autoscaler not owned.
 */
const zone = zones[0]!;
const kvPrefix = 'gce-ilb-orchestrator/';
const owned = { project, zone, name: 'ilb-haproxy' };

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let token: string;
let h: Harness;

async function policy(name = 'ilb-haproxy') {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: name });
  return a.autoscalingPolicy ?? {};
}

const record = () => readRecord(h.admin, stateKey(kvPrefix, owned));
const modifications = () => countModifications(c, 'ilb-haproxy');
const group = (name: string, template?: string) => autoscaledGroup(c, name, template);

let conditions: Record<string, string> = {};
const open = (id: string, action: string) =>
  notification({ id, state: 'open', action, zone, project, condition: conditions[action]! });
const closed = (id: string, action: string) =>
  notification({ id, state: 'closed', action, zone, project, condition: conditions[action]! });

beforeAll(async () => {
  ({ emu } = await startTestEmulator({ alerting: policiesOnly }));
  conditions = await actionPolicies(emu.url, 'haproxy');
  c = clients(emu.port);
  consul = await startConsulDev();
  token = await functionToken(consul);
  await group('ilb-haproxy');
  await group('foreign-haproxy');
  h = buildHandler({ consul, token, computeUrl: emu.url, project, rules: testRules(project, zone) });
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

test('open lowers the CPU target once, a duplicate changes nothing, closed reverts it; a foreign autoscaler is refused', async () => {
  const before = await modifications();
  const first = await h.handle(open('0.cpu1', 'lower-cpu-target'));
  expect(first).toMatchObject({
    results: [
      { autoscaler: `projects/${project}/zones/${zone}/autoscalers/ilb-haproxy`, decision: 'applied' },
      { decision: 'refused', reason: expect.stringMatching(/^not-owned/) as unknown },
    ],
  });
  expect((await policy()).cpuUtilization?.utilizationTarget).toBe(0.5);
  expect((await policy('foreign-haproxy')).cpuUtilization?.utilizationTarget).toBe(0.7);
  expect(await record()).toMatchObject({
    leases: { '0.cpu1': { change: { type: 'cpu-target', target: 0.5 } } },
    original: { cpuTarget: 0.7 },
  });
  expect(await modifications()).toBe(before + 1);

  // Redelivered: the lease is current, nothing is sent.
  const again = await h.handle(open('0.cpu1', 'lower-cpu-target'));
  expect(again).toMatchObject({
    results: [{ decision: 'noop', reason: 'lease-current' }, { decision: 'refused' }],
  });
  expect(await modifications()).toBe(before + 1);

  const done = await h.handle(closed('0.cpu1', 'lower-cpu-target'));
  expect(done).toMatchObject({
    results: [{ decision: 'applied', reason: 'revert' }, { decision: 'refused' }],
  });
  expect((await policy()).cpuUtilization?.utilizationTarget).toBe(0.7);
  const after = await record();
  expect(after?.leases).toEqual({});
  expect(after?.original).toEqual({});
  expect(Object.keys(after?.closed ?? {})).toContain('0.cpu1');
  // A duplicate close changes nothing either.
  expect(await h.handle(closed('0.cpu1', 'lower-cpu-target'))).toMatchObject({
    results: [{ decision: 'noop' }, { decision: 'refused' }],
  });
  expect(await modifications()).toBe(before + 2);

  // Every decision is logged with its reason; the refusal names the autoscaler.
  const refusals = h.logs.filter((l) => l.decision === 'refused');
  expect(refusals[0]).toMatchObject({
    autoscaler: `projects/${project}/zones/${zone}/autoscalers/foreign-haproxy`,
    incidentId: '0.cpu1',
  });
  // …and published as metrics.
  expect(h.logs.filter((l) => /metrics/.test(String(l.message)))).toEqual([]);
  const series = emu.monitoring.list({
    filter: 'metric.type = "custom.googleapis.com/ilb/scaling_alerts/decisions"',
    endTime: new Date(Date.now() + 1000).toISOString(),
    startTime: new Date(Date.now() - 600_000).toISOString(),
  });
  expect(series.timeSeries.map((s) => s.metric.labels.decision)).toEqual(
    expect.arrayContaining(['applied', 'refused']),
  );
});

test('open raises the floor with a one-time scaling schedule and the group grows; a duplicate acts once; closed removes it', async () => {
  const groupSize = async () => {
    const [igm] = await c.igms.get({ project, zone, instanceGroupManager: 'ilb-haproxy-mig' });
    return Number(igm.targetSize);
  };
  expect(await groupSize()).toBeLessThan(3);
  const before = await modifications();
  const first = await h.handle(open('0.floor1', 'raise-min'));
  expect(first).toMatchObject({
    results: [{ decision: 'applied', reason: 'escalate' }, { decision: 'refused' }],
  });
  const schedules = (await policy()).scalingSchedules ?? {};
  const names = Object.keys(schedules).filter((n) => n.startsWith('ilb-incident-'));
  expect(names).toHaveLength(1);
  const s = schedules[names[0]!]!;
  // min 1 + 2, within the tier (step 3, ceiling 5) and the autoscaler's max (5).
  expect(s).toMatchObject({ minRequiredReplicas: 3, timeZone: 'Etc/UTC' });
  expect(s.schedule).toMatch(/^\d+ \d+ \d+ \d+ \* \d{4}$/);
  expect(Number(s.durationSec)).toBeGreaterThanOrEqual(600);
  expect((await policy()).minNumReplicas).toBe(1);
  // Read back ACTIVE (the emulator counts a start already past by default): no fallback.
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-haproxy' });
  expect(a.scalingScheduleStatus?.[names[0]!]?.state).toBe('ACTIVE');
  expect(first).toMatchObject({ results: [{ reason: 'escalate' }, {}] });
  expect((await record())?.original).toEqual({});
  // GCE (here the emulator) applies the schedule in force: the group grows to the leased floor.
  await eventually(async () => (await groupSize()) >= 3, 20_000);

  const again = await h.handle(open('0.floor1', 'raise-min'));
  expect(again).toMatchObject({ results: [{ decision: 'noop' }, {}] });
  expect(await modifications()).toBe(before + 1);

  const done = await h.handle(closed('0.floor1', 'raise-min'));
  expect(done).toMatchObject({ results: [{ decision: 'applied', reason: 'revert' }, {}] });
  expect(Object.keys((await policy()).scalingSchedules ?? {})).toEqual([]);
  expect(await modifications()).toBe(before + 2);
  expect((await record())?.leases).toEqual({});
});

test('closed before open leaves nothing behind', async () => {
  const before = await modifications();
  expect(await h.handle(closed('0.late1', 'scale-out-only'))).toMatchObject({
    results: [{ decision: 'noop', reason: 'closed: no lease was held' }, { decision: 'refused' }],
  });
  expect(await h.handle(open('0.late1', 'scale-out-only'))).toMatchObject({
    results: [{ decision: 'noop', reason: expect.stringMatching(/^closed-before-open/) as unknown }, {}],
  });
  expect((await policy()).mode).toBe('ON');
  expect((await record())?.leases).toEqual({});
  expect(await modifications()).toBe(before);
});

test('scaleInControl is held while open and removed on close (sent as an update: the client cannot send null)', async () => {
  await h.handle(open('0.hold1', 'hold-scale-in'));
  expect((await policy()).scaleInControl).toMatchObject({
    maxScaledInReplicas: { fixed: 0 },
    timeWindowSec: 1800,
  });
  const done = await h.handle(closed('0.hold1', 'hold-scale-in'));
  expect(done).toMatchObject({ results: [{ decision: 'applied' }, {}] });
  const after = await policy();
  expect(after.scaleInControl?.timeWindowSec ?? undefined).toBeUndefined();
  expect(after.cpuUtilization?.utilizationTarget).toBe(0.7);
  expect(h.logs.some((l) => l.incidentId === '0.hold1' && l.method === 'update')).toBe(true);
});

test('a concurrent change (resourceNotReady) is read again, re-planned and applied', async () => {
  let raced = false;
  const racing = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: testRules(project, zone),
    autoscalers: (real) => ({
      ...real,
      async apply(ref, current, patch, requestId) {
        if (!raced) {
          raced = true;
          // Someone else changes the autoscaler just before us: its operation still runs.
          await c.autoscalers.patch({
            project,
            zone,
            autoscaler: 'ilb-haproxy',
            autoscalerResource: { name: 'ilb-haproxy', autoscalingPolicy: { maxNumReplicas: 4 } },
          });
        }
        return real.apply(ref, current, patch, requestId);
      },
    }),
  });
  const out = await racing.handle(open('0.race1', 'scale-out-only'));
  expect(out).toMatchObject({ results: [{ decision: 'applied' }, { decision: 'refused' }] });
  expect('results' in out && out.results[0]!.attempts).toBeGreaterThan(1);
  expect(racing.logs.some((l) => /busy/.test(String(l.message)))).toBe(true);
  const p = await policy();
  expect(p.mode).toBe('ONLY_SCALE_OUT');
  expect(p.maxNumReplicas).toBe(4);
  expect((await record())?.original).toEqual({ mode: 'ON' });

  await racing.handle(closed('0.race1', 'scale-out-only'));
  expect((await policy()).mode).toBe('ON');
});

test('a transient failure after the record was written throws; the redelivery sends the same request id once', async () => {
  const sent: string[] = [];
  let fail = true;
  const flaky = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: testRules(project, zone),
    autoscalers: (real) => ({
      ...real,
      async apply(ref, current, patch, requestId) {
        sent.push(requestId);
        if (fail) {
          fail = false;
          throw new TransientError('patch: 503 backend unavailable');
        }
        return real.apply(ref, current, patch, requestId);
      },
    }),
  });
  const before = await modifications();
  await expect(flaky.handle(open('0.flaky1', 'scale-out-only'))).rejects.toThrow(/503/);
  expect((await record())?.leases).toHaveProperty(['0.flaky1']);
  expect((await policy()).mode).toBe('ON');
  const redelivered = await flaky.handle(open('0.flaky1', 'scale-out-only'));
  expect(redelivered).toMatchObject({ results: [{ decision: 'applied' }, {}] });
  expect(sent).toHaveLength(2);
  expect(sent[1]).toBe(sent[0]);
  expect((await policy()).mode).toBe('ONLY_SCALE_OUT');
  expect(await modifications()).toBe(before + 1);
  await flaky.handle(closed('0.flaky1', 'scale-out-only'));
  expect((await policy()).mode).toBe('ON');
});

test('with a cooldown, the redelivery after a transient failure is not held back by its own first attempt', async () => {
  const rules = testRules(project, zone);
  const cool = { ...rules, tiers: { haproxy: { ...rules.tiers.haproxy!, cooldownSec: 300 } } };
  // Earlier tests' changes would hold this one back: start from no record.
  await h.admin.kv.delete(stateKey(kvPrefix, owned));
  const sent: string[] = [];
  let fail = true;
  const flaky = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: cool,
    autoscalers: (real) => ({
      ...real,
      async apply(ref, current, patch, requestId) {
        sent.push(requestId);
        if (fail) {
          fail = false;
          throw new TransientError('patch: 503 backend unavailable');
        }
        return real.apply(ref, current, patch, requestId);
      },
    }),
  });
  await expect(flaky.handle(open('0.cool1', 'scale-out-only'))).rejects.toThrow(/503/);
  const redelivered = await flaky.handle(open('0.cool1', 'scale-out-only'));
  expect(redelivered).toMatchObject({ results: [{ decision: 'applied', reason: 'escalate' }, {}] });
  expect(sent[1]).toBe(sent[0]);
  expect((await policy()).mode).toBe('ONLY_SCALE_OUT');
  expect(((await record())?.changes as unknown as number[]).length).toBe(1);
  // Reverts are never held back by the cooldown.
  await flaky.handle(closed('0.cool1', 'scale-out-only'));
  expect((await policy()).mode).toBe('ON');
});

test('a deletion sent as an update does not overwrite a change made since the autoscaler was read', async () => {
  await h.handle(open('0.hold2', 'hold-scale-in'));
  expect((await policy()).scaleInControl?.timeWindowSec).toBe(1800);
  let raced = false;
  const racing = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: testRules(project, zone),
    autoscalers: (real) => ({
      ...real,
      async apply(ref, current, patch, requestId) {
        if (!raced) {
          raced = true;
          // An operator's change lands (and completes) between our read and our update.
          const [op] = await c.autoscalers.patch({
            project,
            zone,
            autoscaler: 'ilb-haproxy',
            autoscalerResource: { name: 'ilb-haproxy', autoscalingPolicy: { maxNumReplicas: 3 } },
          });
          const name = (op.latestResponse as { name: string }).name;
          await c.zoneOps.wait({ project, zone, operation: name });
        }
        return real.apply(ref, current, patch, requestId);
      },
    }),
  });
  const out = await racing.handle(closed('0.hold2', 'hold-scale-in'));
  expect(out).toMatchObject({ results: [{ decision: 'applied' }, {}] });
  expect('results' in out && out.results[0]!.attempts).toBeGreaterThan(1);
  const after = await policy();
  expect(after.scaleInControl?.timeWindowSec ?? undefined).toBeUndefined();
  expect(after.maxNumReplicas).toBe(3);
  await c.autoscalers.patch({
    project,
    zone,
    autoscaler: 'ilb-haproxy',
    autoscalerResource: { name: 'ilb-haproxy', autoscalingPolicy: { maxNumReplicas: 5 } },
  });
});

test("an autoscaler is owned by the label on its group's instance template, or not at all", async () => {
  emu.emulator.addTemplate('owned-tmpl', {
    machineType: 'e2-small',
    labels: { 'managed-by': 'gce-ilb-orchestrator' },
    metadata: { items: [] },
  });
  await group('labelled-haproxy', 'owned-tmpl');
  const labelled = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: testRules(project, zone, {
      names: ['labelled-haproxy', 'foreign-haproxy'],
      ownership: { namePrefixes: ['ilb-'], label: { key: 'managed-by', value: 'gce-ilb-orchestrator' } },
    }),
  });
  const out = await labelled.handle(open('0.label1', 'lower-cpu-target'));
  expect(out).toMatchObject({
    results: [
      { autoscaler: expect.stringMatching(/labelled-haproxy$/) as unknown, decision: 'applied' },
      { autoscaler: expect.stringMatching(/foreign-haproxy$/) as unknown, decision: 'refused' },
    ],
  });
  expect((await policy('labelled-haproxy')).cpuUtilization?.utilizationTarget).toBe(0.5);
  expect((await policy('foreign-haproxy')).cpuUtilization?.utilizationTarget).toBe(0.7);
});

test('DRY_RUN plans and logs, and changes neither the autoscaler nor the record', async () => {
  const dry = buildHandler({
    consul,
    token,
    computeUrl: emu.url,
    project,
    rules: testRules(project, zone),
    env: { DRY_RUN: 'true' },
  });
  const before = await modifications();
  const recorded = await record();
  const out = await dry.handle(open('0.dry1', 'scale-out-only'));
  expect(out).toMatchObject({
    results: [{ decision: 'planned', requestId: expect.any(String) as unknown }, {}],
  });
  expect(dry.logs.some((l) => l.dryRun === true && l.incidentId === '0.dry1')).toBe(true);
  expect(await modifications()).toBe(before);
  expect(await record()).toEqual(recorded);
  expect((await policy()).mode).toBe('ON');
});

test('malformed, test and unmatched notifications are acknowledged and change nothing', async () => {
  const before = await modifications();
  expect(await h.handle({ nothing: true })).toMatchObject({ decision: 'rejected' });
  const test = { version: 'test', incident: { state: 'OPEN' } };
  expect(
    await h.handle({ message: { data: Buffer.from(JSON.stringify(test)).toString('base64') } }),
  ).toMatchObject({ decision: 'ignored' });
  // A real policy labelled with an action the rule does not allow.
  conditions['delete-everything'] = await alertPolicy(emu.url, {
    tier: 'haproxy',
    action: 'delete-everything',
  });
  expect(await h.handle(open('0.bad1', 'delete-everything'))).toMatchObject({
    decision: 'ignored',
    reason: expect.stringMatching(/^unmatched: .*not allowed/) as unknown,
  });
  expect(await modifications()).toBe(before);
});
