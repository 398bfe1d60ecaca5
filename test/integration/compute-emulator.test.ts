import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import type { ProcessDriver } from '../../infra-scripts/local/compute-emulator/process-driver';
import {
  clients,
  eventually,
  googleError,
  project,
  startTestEmulator,
  zones,
} from './compute-emulator-helpers';

const [zoneA, zoneB] = zones as [string, string];
const region = 'us-central1';

let emu: RunningEmulator;
let driver: ProcessDriver;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  // Long enough that a RUNNING operation is still RUNNING when polled, even on a loaded machine.
  ({ emu, driver } = await startTestEmulator({ operationDelayMs: 600 }));
  c = clients(emu.port);
});

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  expect(driver.pids().length).toBe(0);
});

type Op = { name?: string | null; status?: unknown; error?: unknown };

async function waitZone(op: { latestResponse: unknown }, zone = zoneA): Promise<Op> {
  const started = op.latestResponse as Op;
  const [done] = await c.zoneOps.wait({ project, zone, operation: started.name! });
  return done as Op;
}

async function managed(igm: string, zone = zoneA) {
  const [items] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: igm });
  return items;
}

async function running(igm: string, n: number) {
  await eventually(async () => {
    const items = await managed(igm);
    return (
      items.length === n && items.every((m) => m.instanceStatus === 'RUNNING' && m.currentAction === 'NONE')
    );
  });
}

describe('zonal managed instance groups through the real client', () => {
  const igm = 'backend-a';

  test('insert returns a RUNNING operation that wait completes, and the group boots real processes', async () => {
    const [op] = await c.igms.insert({
      project,
      zone: zoneA,
      instanceGroupManagerResource: {
        name: igm,
        baseInstanceName: 'backend',
        instanceTemplate: 'global/instanceTemplates/backend-tmpl',
        targetSize: 3,
        listManagedInstancesResults: 'PAGINATED',
      },
    });
    const started = op.latestResponse as Op;
    expect(started.status).toBe('RUNNING');
    const [polled] = await c.zoneOps.get({ project, zone: zoneA, operation: started.name! });
    expect(polled.status).toBe('RUNNING');
    const done = await waitZone(op);
    expect(done.status).toBe('DONE');
    expect(done.error).toBeFalsy();
    await running(igm, 3);
    expect(driver.pids().length).toBe(3);
    const [group] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: igm });
    expect(group.targetSize).toBe(3);
    expect(group.listManagedInstancesResults).toBe('PAGINATED');
    expect(group.status?.isStable).toBe(true);
    for (const m of await managed(igm)) {
      expect(m.instance).toMatch(
        new RegExp(`/projects/${project}/zones/${zoneA}/instances/backend-[a-z0-9]{4}$`),
      );
      expect(m.id).toMatch(/^\d{19}$/);
    }
  });

  test('listManagedInstances pages by maxResults and the pages cover every instance once', async () => {
    const names: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const [items, next] = await c.igms.listManagedInstances(
        { project, zone: zoneA, instanceGroupManager: igm, maxResults: 2, pageToken },
        { autoPaginate: false },
      );
      names.push(...items.map((m) => m.name!));
      pageToken = next?.pageToken ?? undefined;
      pages++;
    } while (pageToken && pages < 10);
    expect(pages).toBe(2);
    expect(new Set(names).size).toBe(3);
    const all = (await managed(igm)).map((m) => m.name!).sort();
    expect(names.sort()).toEqual(all);
  });

  test('a bad page token is a 400', async () => {
    await expect(
      c.igms.listManagedInstances(
        { project, zone: zoneA, instanceGroupManager: igm, pageToken: 'garbage' },
        { autoPaginate: false },
      ),
    ).rejects.toMatchObject({ code: 400 });
  });

  test('PAGELESS (the default, or patched in) ignores maxResults and pageToken: every instance at once', async () => {
    const list = () =>
      c.igms.listManagedInstances(
        { project, zone: zoneA, instanceGroupManager: igm, maxResults: 2, pageToken: 'garbage' },
        { autoPaginate: false },
      );
    const patch = async (mode: string) =>
      waitZone(
        (
          await c.igms.patch({
            project,
            zone: zoneA,
            instanceGroupManager: igm,
            instanceGroupManagerResource: { listManagedInstancesResults: mode },
          })
        )[0],
      );
    await patch('PAGELESS');
    const [group] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: igm });
    expect(group.listManagedInstancesResults).toBe('PAGELESS');
    const [items, next] = await list();
    expect(items).toHaveLength(3);
    expect(next?.pageToken ?? undefined).toBeUndefined();
    await patch('PAGINATED');
    await expect(list()).rejects.toMatchObject({ code: 400 });
  });

  test('unknown resources are Google-shaped 404s with reason notFound', async () => {
    const err = await c.igms
      .get({ project, zone: zoneA, instanceGroupManager: 'nope' })
      .catch((e: unknown) => e);
    expect(googleError(err)).toEqual({ code: 404, reasons: ['notFound'] });
    const err2 = await c.instances
      .get({ project, zone: 'europe-west9-z', instance: 'x' })
      .catch((e: unknown) => e);
    expect(googleError(err2).code).toBe(404);
  });

  test('inserting an existing group is a 409 alreadyExists', async () => {
    const err = await c.igms
      .insert({
        project,
        zone: zoneA,
        instanceGroupManagerResource: {
          name: igm,
          instanceTemplate: 'global/instanceTemplates/backend-tmpl',
          targetSize: 1,
        },
      })
      .catch((e: unknown) => e);
    expect(googleError(err)).toEqual({ code: 409, reasons: ['alreadyExists'] });
  });

  test('patch with a stale fingerprint is a 412 conditionNotMet; with the current one it applies', async () => {
    const [before] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: igm });
    const [op] = await c.igms.patch({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagerResource: { fingerprint: before.fingerprint, description: 'first' },
    });
    expect((await waitZone(op)).status).toBe('DONE');
    const err = await c.igms
      .patch({
        project,
        zone: zoneA,
        instanceGroupManager: igm,
        instanceGroupManagerResource: { fingerprint: before.fingerprint, description: 'second' },
      })
      .catch((e: unknown) => e);
    expect(googleError(err)).toEqual({ code: 412, reasons: ['conditionNotMet'] });
    const [after] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: igm });
    expect(after.description).toBe('first');
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });

  test('resize grows and shrinks the group with real processes', async () => {
    const [op] = await c.igms.resize({ project, zone: zoneA, instanceGroupManager: igm, size: 4 });
    expect((await waitZone(op)).status).toBe('DONE');
    await running(igm, 4);
    expect(driver.pids().length).toBe(4);
    const [op2] = await c.igms.resize({ project, zone: zoneA, instanceGroupManager: igm, size: 3 });
    await waitZone(op2);
    await running(igm, 3);
    expect(driver.pids().length).toBe(3);
  });

  test('resize to a negative size is a 400 invalid', async () => {
    const err = await c.igms
      .resize({ project, zone: zoneA, instanceGroupManager: igm, size: -1 })
      .catch((e: unknown) => e);
    expect(googleError(err)).toEqual({ code: 400, reasons: ['invalid'] });
  });

  test('deleteInstances removes the named instance and lowers the target size', async () => {
    const [victim] = await managed(igm);
    const [op] = await c.igms.deleteInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersDeleteInstancesRequestResource: { instances: [victim!.instance!] },
    });
    await waitZone(op);
    await running(igm, 2);
    expect((await managed(igm)).map((m) => m.name)).not.toContain(victim!.name);
    const err = await c.instances
      .get({ project, zone: zoneA, instance: victim!.name! })
      .catch((e: unknown) => e);
    expect(googleError(err)).toEqual({ code: 404, reasons: ['notFound'] });
  });

  test('deleteInstances of a non-member is accepted and its operation fails, unless told to skip it', async () => {
    const before = await managed(igm);
    const [failing] = await c.igms.deleteInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersDeleteInstancesRequestResource: {
        instances: [before[0]!.instance!, `zones/${zoneA}/instances/stranger`],
      },
    });
    const failed = await waitZone(failing);
    expect(failed.status).toBe('DONE');
    expect(JSON.stringify(failed.error)).toContain('stranger');
    const [group] = await c.igms.get({ project, zone: zoneA, instanceGroupManager: igm });
    expect(group.targetSize).toBe(2);
    expect((await managed(igm)).map((m) => m.name)).toEqual(before.map((m) => m.name));

    // A numeric project and a bare zone path are the same instance; the stranger is skipped.
    const emuProject = emu.emulator.projectNumber;
    const [skipping] = await c.igms.deleteInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersDeleteInstancesRequestResource: {
        instances: [
          `projects/${emuProject}/zones/${zoneA}/instances/${before[0]!.name}`,
          `zones/${zoneA}/instances/stranger`,
        ],
        skipInstancesOnValidationError: true,
      },
    });
    const done = await waitZone(skipping);
    expect(done.error).toBeFalsy();
    await running(igm, 1);
    expect((await managed(igm)).map((m) => m.name)).toEqual([before[1]!.name]);
    const [op] = await c.igms.resize({ project, zone: zoneA, instanceGroupManager: igm, size: 2 });
    await waitZone(op);
    await running(igm, 2);
  });

  test('deleting an instance the group is already deleting fails the second operation', async () => {
    const [m] = await managed(igm);
    const del = () =>
      c.igms.deleteInstances({
        project,
        zone: zoneA,
        instanceGroupManager: igm,
        instanceGroupManagersDeleteInstancesRequestResource: { instances: [m!.instance!] },
      });
    const [first] = await del();
    const [second] = await del();
    expect((await waitZone(first)).error).toBeFalsy();
    expect(JSON.stringify((await waitZone(second)).error)).toContain('already being deleted');
    await running(igm, 1);
    const [op] = await c.igms.resize({ project, zone: zoneA, instanceGroupManager: igm, size: 2 });
    await waitZone(op);
    await running(igm, 2);
  });

  test('an instance in another zone fails the operation even with skipInstancesOnValidationError', async () => {
    const [m] = await managed(igm);
    const [op] = await c.igms.deleteInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersDeleteInstancesRequestResource: {
        instances: [`zones/${zoneB}/instances/${m!.name}`],
        skipInstancesOnValidationError: true,
      },
    });
    const done = await waitZone(op);
    expect(JSON.stringify(done.error)).toContain(zoneB);
    expect((await managed(igm)).length).toBe(2);
  });

  test('recreateInstances keeps the name and gives a new id', async () => {
    const [target] = await managed(igm);
    const [op] = await c.igms.recreateInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersRecreateInstancesRequestResource: { instances: [target!.instance!] },
    });
    await waitZone(op);
    await eventually(async () => {
      const again = (await managed(igm)).find((m) => m.name === target!.name);
      return again?.currentAction === 'NONE' && again.instanceStatus === 'RUNNING' && again.id !== target!.id;
    });
    const [inst] = await c.instances.get({ project, zone: zoneA, instance: target!.name! });
    expect(inst.id).not.toBe(target!.id);
  });

  test('a managed instance deleted directly is repaired under the same name', async () => {
    const [target] = await managed(igm);
    const [op] = await c.instances.delete({ project, zone: zoneA, instance: target!.name! });
    const done = await waitZone(op);
    expect(done.status).toBe('DONE');
    await eventually(async () => {
      const again = (await managed(igm)).find((m) => m.name === target!.name);
      return again?.instanceStatus === 'RUNNING' && again.id !== target!.id;
    });
  });

  test('preempt kills without the shutdown script; the MIG recreates the name with a new id', async () => {
    const [target] = await managed(igm);
    const res = await fetch(
      `${emu.url}/emulator/v1/projects/${project}/zones/${zoneA}/instances/${target!.name}/preempt`,
      { method: 'POST' },
    );
    expect(res.status).toBe(200);
    await eventually(async () => {
      const again = (await managed(igm)).find((m) => m.name === target!.name);
      return again?.instanceStatus === 'RUNNING' && again.id !== target!.id;
    });
  });

  test('crash restarts the instance in place (same id), as automatic restart does', async () => {
    const [target] = await managed(igm);
    const pidsBefore = driver.pids();
    const res = await fetch(
      `${emu.url}/emulator/v1/projects/${project}/zones/${zoneA}/instances/${target!.name}/crash`,
      { method: 'POST' },
    );
    expect(res.status).toBe(200);
    await eventually(async () => {
      const [inst] = await c.instances.get({ project, zone: zoneA, instance: target!.name! });
      return inst.status === 'RUNNING' && driver.pids().some((p) => !pidsBefore.includes(p));
    });
    const [inst] = await c.instances.get({ project, zone: zoneA, instance: target!.name! });
    expect(inst.id).toBe(target!.id);
  });

  test('abandonInstances leaves the instance running outside the group', async () => {
    const [target] = await managed(igm);
    const [op] = await c.igms.abandonInstances({
      project,
      zone: zoneA,
      instanceGroupManager: igm,
      instanceGroupManagersAbandonInstancesRequestResource: { instances: [target!.instance!] },
    });
    await waitZone(op);
    await running(igm, 1);
    const [inst] = await c.instances.get({ project, zone: zoneA, instance: target!.name! });
    expect(inst.status).toBe('RUNNING');
    const [op2] = await c.instances.stop({ project, zone: zoneA, instance: target!.name! });
    await waitZone(op2);
    const [stopped] = await c.instances.get({ project, zone: zoneA, instance: target!.name! });
    expect(stopped.status).toBe('TERMINATED');
    const [list] = await c.instances.list({ project, zone: zoneA });
    expect(list.map((i) => i.name)).toContain(target!.name);
  });
});

describe('autoscalers through the real client', () => {
  test('insert, get, list, patch merges, update replaces, and invalid policies are 400s', async () => {
    const [op] = await c.autoscalers.insert({
      project,
      zone: zoneA,
      autoscalerResource: {
        name: 'backend-a-as',
        target: `projects/${project}/zones/${zoneA}/instanceGroupManagers/backend-a`,
        autoscalingPolicy: { minNumReplicas: 1, maxNumReplicas: 4, mode: 'OFF', coolDownPeriodSec: 30 },
      },
    });
    await waitZone(op);
    const [a] = await c.autoscalers.get({ project, zone: zoneA, autoscaler: 'backend-a-as' });
    expect(a.autoscalingPolicy).toMatchObject({ minNumReplicas: 1, maxNumReplicas: 4, mode: 'OFF' });
    const [list] = await c.autoscalers.list({ project, zone: zoneA });
    expect(list.map((x) => x.name)).toEqual(['backend-a-as']);

    const [p] = await c.autoscalers.patch({
      project,
      zone: zoneA,
      autoscaler: 'backend-a-as',
      autoscalerResource: { autoscalingPolicy: { maxNumReplicas: 5 } },
    });
    await waitZone(p);
    const [patched] = await c.autoscalers.get({ project, zone: zoneA, autoscaler: 'backend-a-as' });
    expect(patched.autoscalingPolicy).toMatchObject({
      minNumReplicas: 1,
      maxNumReplicas: 5,
      mode: 'OFF',
      coolDownPeriodSec: 30,
    });

    const [u] = await c.autoscalers.update({
      project,
      zone: zoneA,
      autoscaler: 'backend-a-as',
      autoscalerResource: { name: 'backend-a-as', autoscalingPolicy: { maxNumReplicas: 3, mode: 'OFF' } },
    });
    await waitZone(u);
    const [updated] = await c.autoscalers.get({ project, zone: zoneA, autoscaler: 'backend-a-as' });
    expect(updated.autoscalingPolicy).toMatchObject({
      minNumReplicas: 1,
      maxNumReplicas: 3,
      coolDownPeriodSec: 60,
    });

    const bad = await c.autoscalers
      .patch({
        project,
        zone: zoneA,
        autoscaler: 'backend-a-as',
        autoscalerResource: { autoscalingPolicy: { minNumReplicas: 9 } },
      })
      .catch((e: unknown) => e);
    expect(googleError(bad)).toEqual({ code: 400, reasons: ['invalid'] });
    const missing = await c.autoscalers
      .get({ project, zone: zoneA, autoscaler: 'nope' })
      .catch((e: unknown) => e);
    expect(googleError(missing)).toEqual({ code: 404, reasons: ['notFound'] });
  });

  test('a second modification while the first is still running is refused', async () => {
    const first = c.autoscalers.patch({
      project,
      zone: zoneA,
      autoscaler: 'backend-a-as',
      autoscalerResource: { autoscalingPolicy: { maxNumReplicas: 4 } },
    });
    const [op] = await first;
    const second = await c.autoscalers
      .patch({
        project,
        zone: zoneA,
        autoscaler: 'backend-a-as',
        autoscalerResource: { autoscalingPolicy: { maxNumReplicas: 2 } },
      })
      .catch((e: unknown) => e);
    expect(googleError(second)).toEqual({ code: 400, reasons: ['resourceNotReady'] });
    await waitZone(op);
    const [third] = await c.autoscalers.patch({
      project,
      zone: zoneA,
      autoscaler: 'backend-a-as',
      autoscalerResource: { autoscalingPolicy: { maxNumReplicas: 2 } },
    });
    expect((await waitZone(third)).status).toBe('DONE');
  });
});

describe('regional groups, autoscalers and operations', () => {
  test('a regional group spreads over its zones and region operations wait', async () => {
    const [op] = await c.regionIgms.insert({
      project,
      region,
      instanceGroupManagerResource: {
        name: 'haproxy',
        baseInstanceName: 'haproxy',
        instanceTemplate: 'global/instanceTemplates/backend-tmpl',
        targetSize: 2,
      },
    });
    const [done] = await c.regionOps.wait({ project, region, operation: (op.latestResponse as Op).name! });
    expect(done.status).toBe('DONE');
    await eventually(async () => {
      const [items] = await c.regionIgms.listManagedInstances({
        project,
        region,
        instanceGroupManager: 'haproxy',
      });
      return items.length === 2 && items.every((m) => m.instanceStatus === 'RUNNING');
    });
    const [items] = await c.regionIgms.listManagedInstances({
      project,
      region,
      instanceGroupManager: 'haproxy',
    });
    const zonesUsed = items.map((m) => /zones\/([^/]+)\//.exec(m.instance!)![1]).sort();
    expect(zonesUsed).toEqual([zoneA, zoneB]);

    const [aop] = await c.regionAutoscalers.insert({
      project,
      region,
      autoscalerResource: {
        name: 'haproxy-as',
        target: `projects/${project}/regions/${region}/instanceGroupManagers/haproxy`,
        autoscalingPolicy: { minNumReplicas: 2, maxNumReplicas: 4, mode: 'OFF' },
      },
    });
    await c.regionOps.wait({ project, region, operation: (aop.latestResponse as Op).name! });
    const [ras] = await c.regionAutoscalers.get({ project, region, autoscaler: 'haproxy-as' });
    expect(ras.target).toContain(`/regions/${region}/instanceGroupManagers/haproxy`);
    const [group] = await c.regionIgms.get({ project, region, instanceGroupManager: 'haproxy' });
    expect(group.status?.autoscaler).toContain('/autoscalers/haproxy-as');
  });
  test('regional group calls name instances by bare name or with a numeric project; a non-member fails the operation', async () => {
    const list = async () =>
      (await c.regionIgms.listManagedInstances({ project, region, instanceGroupManager: 'haproxy' }))[0];
    const regionWait = async (op: { latestResponse: unknown }) =>
      (await c.regionOps.wait({ project, region, operation: (op.latestResponse as Op).name! }))[0] as Op;
    const [a, b] = await list();
    const [refused] = await c.regionIgms.recreateInstances({
      project,
      region,
      instanceGroupManager: 'haproxy',
      regionInstanceGroupManagersRecreateRequestResource: { instances: [a!.name!, 'stranger'] },
    });
    expect(JSON.stringify((await regionWait(refused)).error)).toContain('stranger');
    expect((await list()).map((m) => m.id)).toEqual([a!.id, b!.id]);

    const zoneOfB = /zones\/([^/]+)\//.exec(b!.instance!)![1];
    const [abandoned] = await c.regionIgms.abandonInstances({
      project,
      region,
      instanceGroupManager: 'haproxy',
      regionInstanceGroupManagersAbandonInstancesRequestResource: {
        instances: [`projects/${emu.emulator.projectNumber}/zones/${zoneOfB}/instances/${b!.name}`],
      },
    });
    expect((await regionWait(abandoned)).error).toBeFalsy();
    await eventually(async () => (await list()).length === 1);
    const [deleted] = await c.regionIgms.deleteInstances({
      project,
      region,
      instanceGroupManager: 'haproxy',
      regionInstanceGroupManagersDeleteInstancesRequestResource: { instances: [a!.name!] },
    });
    expect((await regionWait(deleted)).error).toBeFalsy();
    await eventually(async () => (await list()).length === 0);
    const [abandonedVm] = await c.instances.get({ project, zone: zoneOfB!, instance: b!.name! });
    expect(abandonedVm.status).toBe('RUNNING');
  });
});

describe('routing', () => {
  test("another project's resources, unknown paths and wrong methods are 404 notFound", async () => {
    const other = await fetch(
      `${emu.url}/compute/v1/projects/someone-else/zones/${zoneA}/instanceGroupManagers`,
    );
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({
      error: {
        message: "The resource 'projects/someone-else' was not found",
        errors: [{ reason: 'notFound' }],
      },
    });
    const unknown = await fetch(`${emu.url}/compute/v1/projects/${project}/zones/${zoneA}/disks`);
    expect(unknown.status).toBe(404);
    const wrongMethod = await fetch(`${emu.url}/compute/v1/projects/${project}/zones/${zoneA}/autoscalers`, {
      method: 'DELETE',
    });
    expect(wrongMethod.status).toBe(404);
  });

  test('the state control lists every group the API lists', async () => {
    const res = await fetch(`${emu.url}/emulator/v1/state`);
    expect(res.status).toBe(200);
    const state = (await res.json()) as {
      project: string;
      groups: { name: string }[];
    };
    const [zonal] = await c.igms.list({ project, zone: zoneA });
    const [regional] = await c.regionIgms.list({ project, region });
    expect(state.project).toBe(project);
    expect(state.groups.map((g) => g.name).sort()).toEqual(
      [...zonal, ...regional].map((g) => g.name!).sort(),
    );
  });
});
