/**
 * Who watches the watcher, and who may make it act: the health-sweep entry points as the Functions
 * Framework serves them, against a real Consul (the sweep's own policy) and the Compute emulator,
 * whose Monitoring store receives the heartbeats and the sweep's metrics.
 */
import type { SweepResult } from '../../shared/health-sweep/sweep';
import { project, zones } from './compute-emulator-helpers';
import {
  groupWithPassingNodes,
  loadSweepEntries,
  schedulerTick,
  startSweepWorld,
  type SweepWorld,
} from './health-sweep.entry';
import { registerMember, type Member } from './health-sweep.support';

const [zoneA] = zones as [string, string];
let world: SweepWorld;
const stale: Member = {
  name: 'backend-gone',
  id: '9300000000000000001',
  zone: zoneA,
  group: 'backend-a',
  role: 'backend',
};

const call = async (url: string, body?: unknown, method = 'POST') => {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: 'Bearer t',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as SweepResult & { error?: string } };
};

/** The latest value of each series of a custom metric, by its label `label`. */
function latest(metric: string, label: string): Record<string, number> {
  const listed = world.emu.monitoring.list({
    filter: `metric.type = "custom.googleapis.com/ilb/${metric}"`,
    startTime: new Date(Date.now() - 600_000).toISOString(),
    endTime: new Date(Date.now() + 60_000).toISOString(),
  });
  return Object.fromEntries(
    listed.timeSeries.map((t) => [t.metric.labels?.[label] ?? '', t.points[0]?.value.doubleValue ?? NaN]),
  );
}

const nodeNames = async () => (await world.admin.catalog.nodes()).map((n) => n.name);

beforeAll(async () => {
  world = await startSweepWorld();
  await groupWithPassingNodes(world, { zone: zoneA, name: 'backend-a', size: 2 });
  await loadSweepEntries(world, { zone: zoneA, name: 'backend-a' }, { bootGraceSeconds: 3600 });
}, 90_000);

afterAll(() => world?.stop());

beforeEach(async () => {
  // A node whose instance is gone (Compute answers 404 for its id): stale at once.
  await registerMember(world.admin, stale, project);
});

describe('healthSweepHttp: reports only', () => {
  test('no body, an empty body, dryRun=false: a report, and the stale node stays', async () => {
    const url = await world.serve('healthSweepHttp');
    for (const r of [
      await call(url),
      await call(url, {}),
      await call(`${url}?dryRun=false`, { dryRun: false }),
    ]) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'completed', dryRun: true });
      expect(r.body.report?.stale).toEqual([expect.objectContaining({ node: stale.name })]);
    }
    expect((await call(url, undefined, 'GET')).body.dryRun).toBe(true);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('asking it to act is refused (403), pointing at the acting entry point', async () => {
    const url = await world.serve('healthSweepHttp');
    const r = await call(url, { act: true });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/healthSweepActHttp/);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('writes its heartbeat after a completed run', async () => {
    await call(await world.serve('healthSweepHttp'));
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweepHttp: 1 });
  });
});

describe('healthSweepActHttp: acts only on {"act": true}', () => {
  test('without act (or act false, a string, a GET, or with dryRun) it reports', async () => {
    const url = await world.serve('healthSweepActHttp');
    const asks: Array<[string, unknown, string?]> = [
      [url, undefined],
      [url, { act: false }],
      [url, { act: true, dryRun: true }],
      [`${url}?dryRun=1`, { act: true }],
      [`${url}?act=true`, undefined, 'GET'],
    ];
    for (const [u, body, method] of asks) {
      const r = await call(u, body, method);
      expect({ body, status: r.status, dryRun: r.body.dryRun }).toEqual({ body, status: 200, dryRun: true });
    }
    expect((await call(url, { act: 'true' })).status).toBe(400);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('with act: the stale node is removed, counted as repaired without an event, and the heartbeat written', async () => {
    const url = await world.serve('healthSweepActHttp');
    const r = await call(url, { act: true });
    expect(r.status).toBe(200);
    expect(r.body.dryRun).toBe(false);
    expect(r.body.done.filter((d) => d.action.type === 'deregister')).toEqual([
      expect.objectContaining({
        action: expect.objectContaining({ type: 'deregister', node: stale.name }),
        outcome: 'done',
      }),
    ]);
    expect(await nodeNames()).not.toContain(stale.name);
    expect(latest('sweep_repaired_without_event', 'kind')).toEqual({ stale: 1, broken: 0 });
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweepActHttp: 1 });
    // The next sweep finds nothing to repair: the series goes back to 0.
    await call(url, { act: true });
    expect(latest('sweep_repaired_without_event', 'kind')).toEqual({ stale: 0, broken: 0 });
  });
});

describe('healthSweep (CloudEvent)', () => {
  test('a Scheduler tick sweeps and writes the heartbeat of healthSweep', async () => {
    const url = await world.serve('healthSweep');
    const res = await schedulerTick(url);
    expect(res.status).toBeLessThan(300);
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweep: 1 });
    // The scheduled sweep acts: the stale node is gone.
    expect(await nodeNames()).not.toContain(stale.name);
  });
});
