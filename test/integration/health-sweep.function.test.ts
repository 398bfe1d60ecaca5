import type { SweepResult } from '../../shared/health-sweep/sweep';
import { project, zones } from './compute-emulator-helpers';
import { loadSweepEntries, schedulerTick, startSweepWorld, type SweepWorld } from './health-sweep.entry';
import { registerMember } from './health-sweep.support';

// The entry points as the Functions Framework serves them, configured by the environment.
const [zoneA] = zones as [string, string];
let world: SweepWorld;
const serve = (target: string) => world.serve(target);

beforeAll(async () => {
  world = await startSweepWorld();
  await loadSweepEntries(world, { zone: zoneA, name: 'backend-a' });
}, 60_000);

afterAll(() => world?.stop());

describe('healthSweepHttp', () => {
  test('refuses a request without a bearer token (401), whatever IAM let through', async () => {
    const url = await serve('healthSweepHttp');
    const res = await fetch(url, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    const basic = await fetch(url, { method: 'POST', headers: { authorization: 'Basic eDp5' } });
    expect(basic.status).toBe(401);
  });

  test('a group that cannot be read: the report says so and the sweep only reports', async () => {
    await registerMember(
      world.admin,
      { name: 'backend-x', id: '9100000000000000001', zone: zoneA, group: 'backend-a', role: 'backend' },
      project,
    );
    const url = await serve('healthSweepHttp');
    // As the deploy README's curl sends it: the scheme in lower case.
    const res = await fetch(`${url}?dryRun=true`, { headers: { authorization: 'bearer t' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SweepResult;
    expect(body).toMatchObject({ status: 'completed', dryRun: true });
    // The group does not exist in the emulator: a failed read, so report-only.
    expect(body.report?.reportOnly).toEqual(['incomplete-read']);
    expect(body.report?.seen.nodesInGroups).toBe(1);
    expect((await world.admin.catalog.nodes()).map((n) => n.name)).toContain('backend-x');
  });
});

describe('healthSweep (CloudEvent)', () => {
  test('a Scheduler message runs one sweep and is acknowledged', async () => {
    const url = await serve('healthSweep');
    const res = await schedulerTick(url);
    expect(res.status).toBeLessThan(300);
    // It ran for real: the lock was taken and released, the bucket and marks untouched (report-only).
    expect(await world.admin.kv.get('gce-ilb-orchestrator/health-sweep/lock')).toMatchObject({
      value: expect.any(String),
    });
  });
});
