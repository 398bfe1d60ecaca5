import { planReconcile } from '../../infra-scripts/local/compute-emulator/mig-plan';
import type { Igm, Instance, Slot } from '../../infra-scripts/local/compute-emulator/state';

const slot = (name: string, s: Partial<Slot> = {}): Slot => ({
  name,
  zone: 'z-a',
  instanceId: name,
  action: 'NONE',
  want: 'keep',
  ...s,
});
const igm = (slots: Slot[], targetSize: number, zones = ['z-a']): Igm => ({
  id: '1',
  name: 'g',
  scope: { kind: 'zones', name: 'z-a' },
  description: '',
  baseInstanceName: 'g',
  instanceTemplate: 't',
  targetSize,
  fingerprint: 'f',
  creationTimestamp: '',
  zones,
  slots,
});
const inst = (name: string, i: Partial<Instance> = {}): Instance => ({
  id: name,
  name,
  zone: 'z-a',
  status: 'RUNNING',
  creationTimestamp: `2026-01-01T00:00:0${name.slice(-1)}Z`,
  networkIP: '127.0.0.2',
  metadata: [],
  labels: {},
  tags: [],
  machineType: 'e2-small',
  hung: false,
  busy: false,
  ...i,
});
let n = 0;
const newName = () => `new-${n++}`;

test('grows to the target size, spreading new names evenly over the zones', () => {
  const g = igm([], 3, ['z-a', 'z-b']);
  const plan = planReconcile(g, () => undefined, newName);
  expect(plan.add.map((s) => s.zone).sort()).toEqual(['z-a', 'z-a', 'z-b']);
  expect(plan.steps.every((s) => s.kind === 'create')).toBe(true);
});

test('shrinks by deleting stopped instances first, then the newest', () => {
  const instances = { a1: inst('a1'), a2: inst('a2', { status: 'TERMINATED' }), a3: inst('a3') };
  const g = igm([slot('a1'), slot('a2'), slot('a3')], 1);
  const plan = planReconcile(g, (s) => instances[s.name as keyof typeof instances], newName);
  expect(plan.steps.map((s) => `${s.kind}:${s.name}`)).toEqual(['delete:a2', 'delete:a3']);
});

test('repairs missing and terminated instances under their names; busy names are left alone', () => {
  const instances = {
    b: inst('b', { status: 'TERMINATED' }),
    c: inst('c', { status: 'TERMINATED', busy: true }),
  };
  const g = igm([slot('a'), slot('b'), slot('c'), slot('d', { action: 'CREATING' })], 4);
  const plan = planReconcile(g, (s) => instances[s.name as keyof typeof instances], newName);
  expect(plan.steps).toEqual([
    { kind: 'create', name: 'a', zone: 'z-a', reason: 'repair' },
    { kind: 'recreate', name: 'b', zone: 'z-a', reason: 'repair' },
  ]);
});

test('a name being recreated still counts toward the target size', () => {
  const instances = { a: inst('a'), b: inst('b') };
  const g = igm([slot('a', { want: 'recreate' }), slot('b')], 2);
  const plan = planReconcile(g, (s) => instances[s.name as keyof typeof instances], newName);
  expect(plan.add).toEqual([]);
  expect(plan.steps).toEqual([{ kind: 'recreate', name: 'a', zone: 'z-a', reason: 'requested' }]);
});
