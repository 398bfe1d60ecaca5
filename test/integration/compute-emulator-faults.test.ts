/**
 * GCE's own faults as the emulator plays them, seen through the audit log: preemption with its
 * shutdown grace, host errors with automatic restart in place, the repair of a missing member, and a
 * faulty log sink (duplicates, a `last` before its `first`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProcessDriver, type RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import type { LogEntry } from '../../infra-scripts/local/compute-emulator/audit-log';
import type { EmulatorOptions } from '../../infra-scripts/local/compute-emulator/emulator';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';

const zone = zones[0]!;
const marks = mkdtempSync(path.join(tmpdir(), 'emu-shutdown-'));
// The shutdown script takes half a second, then leaves a mark: proof it ran to its end.
const command = [
  'sh',
  '-c',
  `trap 'sleep 0.5; touch "${marks}/$INSTANCE_ID"; exit 0' TERM; while true; do sleep 0.2; done`,
];

type Entry = {
  insertId: string;
  operation: { id: string; first?: boolean; last?: boolean };
  protoPayload: { methodName: string; resourceName: string };
  resource: { labels: { instance_id: string } };
};

interface Started {
  emu: RunningEmulator;
  c: ReturnType<typeof clients>;
  entries: Entry[];
}
const running: Started[] = [];

async function start(overrides: Partial<EmulatorOptions>, size: number): Promise<Started> {
  const entries: Entry[] = [];
  const audit = (e: LogEntry) => {
    entries.push(e as unknown as Entry);
    return Promise.resolve();
  };
  const { emu } = await startTestEmulator({ driver: new ProcessDriver(command), audit, ...overrides });
  const c = clients(emu.port);
  const s = { emu, c, entries };
  running.push(s);
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'web',
      baseInstanceName: 'web',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: size,
    },
  });
  await eventually(
    async () => (await members(s)).filter((m) => m.instanceStatus === 'RUNNING').length === size,
  );
  return s;
}

async function members(s: Started) {
  const [items] = await s.c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'web' });
  return items;
}

const control = (s: Started, name: string, action: string) =>
  fetch(`${s.emu.url}/emulator/v1/projects/${project}/zones/${zone}/instances/${name}/${action}`, {
    method: 'POST',
  });

const methodsFor = (s: Started, id: string) =>
  s.entries.filter((e) => e.resource.labels.instance_id === id).map((e) => e.protoPayload.methodName);

afterAll(async () => {
  for (const s of running) {
    await s.c.close();
    await s.emu.stop();
  }
  rmSync(marks, { recursive: true, force: true });
});

describe('GCE faults', () => {
  let s: Started;
  beforeAll(async () => {
    s = await start({ preemptionShutdownMs: 4000 }, 3);
  });

  test('preemption logs preempted, lets the shutdown script finish within its grace, and the MIG repairs the name', async () => {
    const [victim] = await members(s);
    expect((await control(s, victim!.name!, 'preempt')).status).toBe(200);
    await eventually(() => existsSync(path.join(marks, String(victim!.id))));
    await eventually(async () => {
      const again = (await members(s)).find((m) => m.name === victim!.name);
      return again?.instanceStatus === 'RUNNING' && again.id !== victim!.id;
    });
    const seen = methodsFor(s, String(victim!.id));
    expect(seen).toContain('compute.instances.preempted');
    expect(seen).toContain('compute.instances.repair.recreateInstance');
    expect(seen.indexOf('compute.instances.preempted')).toBeLessThan(
      seen.indexOf('compute.instances.repair.recreateInstance'),
    );
  });

  test('a host error restarts the instance in place: hostError, then automaticRestart, same id', async () => {
    const [, target] = await members(s);
    expect((await control(s, target!.name!, 'crash')).status).toBe(200);
    await eventually(() => methodsFor(s, String(target!.id)).includes('compute.instances.automaticRestart'));
    const seen = methodsFor(s, String(target!.id)).filter((m) => !m.startsWith('v1.'));
    expect(seen).toEqual(['compute.instances.hostError', 'compute.instances.automaticRestart']);
    const [inst] = await s.c.instances.get({ project, zone, instance: target!.name! });
    expect([inst.status, String(inst.id)]).toEqual(['RUNNING', String(target!.id)]);
    // Killed, not shut down: a host error gives no shutdown script.
    expect(existsSync(path.join(marks, String(target!.id)))).toBe(false);
  });

  test('a member deleted behind the group is repaired with a repair.recreateInstance entry', async () => {
    const [, , target] = await members(s);
    const [op] = await s.c.instances.delete({ project, zone, instance: target!.name! });
    await s.c.zoneOps.wait({ project, zone, operation: (op.latestResponse as { name: string }).name });
    await eventually(() =>
      methodsFor(s, String(target!.id)).includes('compute.instances.repair.recreateInstance'),
    );
    await eventually(async () => {
      const again = (await members(s)).find((m) => m.name === target!.name);
      return again?.instanceStatus === 'RUNNING' && again.id !== target!.id;
    });
  });
});

describe('a faulty audit sink', () => {
  test('reorders a last before its first and duplicates entries; preemption by default kills at once', async () => {
    const s = await start({ auditFaults: { reorder: 1, duplicate: 1, seed: 3, holdMs: 30_000 } }, 1);
    const insertsNow = () =>
      s.entries.filter((e) => e.protoPayload.methodName === 'v1.compute.instances.insert');
    await eventually(() => insertsNow().length === 4);
    const inserts = insertsNow();
    expect(inserts.map((e) => (e.operation.first ? 'first' : 'last'))).toEqual([
      'last',
      'last',
      'first',
      'first',
    ]);
    expect(new Set(inserts.map((e) => e.insertId)).size).toBe(2);

    const [victim] = await members(s);
    expect((await control(s, victim!.name!, 'preempt')).status).toBe(200);
    await eventually(() => methodsFor(s, String(victim!.id)).includes('compute.instances.preempted'));
    await eventually(async () => (await members(s))[0]?.id !== victim!.id);
    expect(existsSync(path.join(marks, String(victim!.id)))).toBe(false);
  });
});
