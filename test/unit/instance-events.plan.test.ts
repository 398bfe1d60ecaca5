import fc from 'fast-check';
import type { CatalogNode } from '../../shared/consul';
import { nodeMetaKeys } from '../../shared/contract';
import type { EventAction, EventTarget, InstanceEvent } from '../../shared/instance-events/parse';
import {
  needsConfirmation,
  needsLookup,
  planTarget,
  resolveInstanceId,
  type Observation,
} from '../../shared/instance-events/plan';
import { mergeRecord, type InstanceRecord, type Maintenance } from '../../shared/membership';

const X = '4512345678901234567';
const Y = '4512345678901234999';
const name = 'backend-7k2p';

const target = (instanceId?: string): EventTarget => ({
  project: 'ilb-demo',
  zone: 'us-central1-f',
  name,
  instanceId,
});
const event = (action: EventAction, time: number, extra: Partial<InstanceEvent> = {}): InstanceEvent => ({
  id: `e-${action}-${time}`,
  insertId: `i-${time}`,
  phase: 'single',
  // Stop/start cycles: the realistic way one instance id goes back and forth.
  method: {
    drain: 'compute.instances.stop',
    remove: 'compute.instances.stop',
    restore: 'compute.instances.start',
  }[action],
  action,
  time,
  targets: [target(X)],
  ...extra,
});
const node = (meta: Record<string, string>, modifyIndex = 10): CatalogNode => ({
  name,
  address: '10.0.0.7',
  meta,
  modifyIndex,
});
const obs = (o: Partial<Observation>): Observation => ({ node: null, record: null, ...o });

describe('planTarget: identity', () => {
  it('deregisters (CAS on the read index) and force-leaves the node carrying the departed id', () => {
    const plan = planTarget(
      event('remove', 5),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: X }, 42) }),
    );
    expect(plan.decision).toBe('deregister');
    expect(plan.steps).toEqual([
      { type: 'deregister', node: name, modifyIndex: 42, instanceId: X },
      { type: 'force-leave', node: name },
    ]);
    // A removal leaves no record: the deleted node is its own tombstone.
    expect(plan.mark).toBeUndefined();
  });

  it.each(['drain', 'remove'] as const)('%s leaves a same-name replacement alone', (action) => {
    const plan = planTarget(
      event(action, 5),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y }) }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'replacement-present', steps: [] });
    // Nothing is recorded about an instance the event does not concern.
    expect(plan.mark).toBeUndefined();
  });

  it('asks Compute about a node without identity metadata, and only then', () => {
    expect(needsLookup(event('remove', 1), node({}))).toBe(true);
    expect(needsLookup(event('remove', 1), node({ [nodeMetaKeys.instanceId]: X }))).toBe(false);
    expect(needsLookup(event('remove', 1), null)).toBe(false);
    expect(needsLookup(event('restore', 1), node({}))).toBe(false);
  });

  it.each([
    ['gone from Compute', { found: false } as const, 'deregister', 'instance-gone'],
    [
      'stopped, same id',
      { found: true, id: X, status: 'TERMINATED' } as const,
      'deregister',
      'instance-gone',
    ],
    ['running, same id', { found: true, id: X, status: 'RUNNING' } as const, 'skip', 'instance-running'],
    [
      'another instance owns the name',
      { found: true, id: Y, status: 'RUNNING' } as const,
      'skip',
      'replacement-present',
    ],
  ])('node without metadata, instance %s → %s', (_what, lookup, decision, reason) => {
    const plan = planTarget(event('remove', 5), target(X), obs({ node: node({}), lookup }));
    expect(plan).toMatchObject({ decision, reason });
  });

  it('forgets the record of an instance deleted for good, not of a stopped one', () => {
    const deleted = event('remove', 5, { method: 'compute.instances.delete' });
    const record: InstanceRecord = { drainAt: 3 };
    const present = obs({ node: node({ [nodeMetaKeys.instanceId]: X }), record });
    const forget = { type: 'forget-instance', instanceId: X };
    expect(planTarget(deleted, target(X), present).steps).toContainEqual(forget);
    expect(planTarget(deleted, target(X), obs({ record })).steps).toContainEqual(forget);
    const stopped = planTarget(event('remove', 5), target(X), present);
    expect(stopped.steps.map((s) => s.type)).toEqual(['deregister', 'force-leave']);
  });

  it('records nothing for a creation: no event about an instance precedes it', () => {
    const created = event('restore', 5, { method: 'compute.instances.insert' });
    expect(
      planTarget(created, target(X), obs({ node: node({ [nodeMetaKeys.instanceId]: X }) })).mark,
    ).toBeUndefined();
    expect(planTarget(event('restore', 5), target(X), obs({})).mark).toEqual({ field: 'restoreAt', at: 5 });
  });

  it('neither deletes nor force-leaves by name when the node is already gone (a replacement may be joining)', () => {
    const plan = planTarget(event('remove', 5), target(X), obs({}));
    expect(plan).toMatchObject({ decision: 'skip', reason: 'already-gone', steps: [] });
  });

  it('drains a MIG-named instance only if the node is in that group, with the id from its metadata', () => {
    const mig = event('drain', 5, { group: 'backend-mig', targets: [target()] });
    const member = planTarget(
      mig,
      target(),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y, [nodeMetaKeys.group]: 'backend-mig' }) }),
    );
    expect(member).toMatchObject({
      decision: 'drain',
      instanceId: Y,
      steps: [{ type: 'drain', node: name, instanceId: Y, since: 5 }],
    });
    const stranger = planTarget(
      mig,
      target(),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y, [nodeMetaKeys.group]: 'other' }) }),
    );
    expect(stranger).toMatchObject({ decision: 'skip', reason: 'not-in-group', mark: undefined });
    const unknown = planTarget(mig, target(), obs({ node: node({}), lookup: { found: false } }));
    expect(unknown).toMatchObject({ decision: 'skip', reason: 'already-gone' });
  });
});

describe('planTarget: confirmation by Compute and scope', () => {
  const alive = node({ [nodeMetaKeys.instanceId]: X }, 42);
  const system = (method: string, time = 5): InstanceEvent =>
    event('remove', time, { method, confirm: 'gone' });
  const drained: InstanceRecord = { drainAt: 3, maintenance: { node: name, eventAt: 3 } };

  it('a late hostError leaves a node restarted in place (same id, running) alone', () => {
    const hostError = system('compute.instances.hostError');
    expect(needsConfirmation(hostError, { node: alive, gossip: 'alive', record: null })).toBe(true);
    const restarted = { found: true, id: X, status: 'RUNNING' } as const;
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: restarted })),
    ).toMatchObject({
      decision: 'skip',
      reason: 'instance-running',
      steps: [],
    });
    // Not yet confirmed: asked again on redelivery, never deregistered blind.
    expect(planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive' })).decision).toBe('retry');
    // Compute says it is down, or the node left gossip: deregistered.
    const down = { found: true, id: X, status: 'TERMINATED' } as const;
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: down })).decision,
    ).toBe('deregister');
    // The name now belongs to a successor (recreated): this instance is gone.
    const successor = { found: true, id: Y, status: 'RUNNING' } as const;
    expect(
      planTarget(hostError, target(X), obs({ node: alive, gossip: 'alive', current: successor })).decision,
    ).toBe('deregister');
    expect(needsConfirmation(hostError, { node: alive, gossip: 'absent', record: null })).toBe(false);
    expect(planTarget(hostError, target(X), obs({ node: alive, gossip: 'absent' })).decision).toBe(
      'deregister',
    );
  });

  it('a preempted VM still alive in gossip is deregistered but not force-left; once out of gossip it is', () => {
    const preempted = system('compute.instances.preempted');
    const stopping = { found: true, id: X, status: 'STOPPING' } as const;
    const live = planTarget(preempted, target(X), obs({ node: alive, gossip: 'alive', current: stopping }));
    expect(live.decision).toBe('deregister');
    expect(live.steps.map((s) => s.type)).toEqual(['deregister']);
    const gone = planTarget(preempted, target(X), obs({ node: alive, gossip: 'absent' }));
    expect(gone.steps.map((s) => s.type)).toEqual(['deregister', 'force-leave']);
    // No serfHealth on the node says nothing of its agent: Compute is asked, nobody is force-left.
    expect(needsConfirmation(preempted, { node: alive, gossip: 'unknown', record: null })).toBe(true);
    const unknown = planTarget(
      preempted,
      target(X),
      obs({ node: alive, gossip: 'unknown', current: stopping }),
    );
    expect(unknown.steps.map((s) => s.type)).toEqual(['deregister']);
  });

  it('automaticRestart (a restore logged later) supersedes the hostError delivered after it', () => {
    const plan = planTarget(
      system('compute.instances.hostError', 5),
      target(X),
      obs({ node: alive, gossip: 'absent', record: { restoreAt: 6 } }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'superseded' });
  });

  it.each([
    ['still running', { found: true, id: X, status: 'RUNNING' } as const, 'restore', 'back-in-service'],
    [
      'being deleted (stopping)',
      { found: true, id: X, status: 'STOPPING' } as const,
      'skip',
      'instance-going-away',
    ],
    ['terminated', { found: true, id: X, status: 'TERMINATED' } as const, 'skip', 'instance-going-away'],
    ['gone', { found: false } as const, 'skip', 'instance-gone'],
    [
      'replaced by a same-name successor',
      { found: true, id: Y, status: 'RUNNING' } as const,
      'skip',
      'instance-gone',
    ],
  ])('a failed deletion restores only an instance Compute reports %s', (_what, current, decision, reason) => {
    const failed = event('restore', 9, { method: 'compute.instances.delete', confirm: 'serving' });
    const plan = planTarget(failed, target(X), obs({ node: alive, record: drained, current }));
    expect(plan).toMatchObject({ decision, reason });
    // A drain that stays records no restore: a later event is never taken for superseded.
    if (decision === 'skip') expect(plan.mark).toBeUndefined();
  });

  it('an abandoned, running instance gets its drain lifted by the group entry that ends', () => {
    const abandoned = event('restore', 9, {
      method: 'compute.instanceGroupManagers.abandonInstances',
      confirm: 'serving',
      group: 'backend-mig',
      targets: [target()],
    });
    const plan = planTarget(
      abandoned,
      target(),
      obs({ node: alive, record: drained, current: { found: true, id: X, status: 'RUNNING' } }),
    );
    expect(plan).toMatchObject({ decision: 'restore', steps: [{ type: 'undrain', instanceId: X }] });
  });

  it('never acts on Consul servers or on nodes outside the managed roles', () => {
    const server = node({ [nodeMetaKeys.instanceId]: X, [nodeMetaKeys.role]: 'consul' });
    for (const action of ['drain', 'remove', 'restore'] as const) {
      expect(planTarget(event(action, 5), target(X), obs({ node: server, record: drained }))).toMatchObject({
        decision: 'skip',
        reason: 'not-managed',
        steps: [],
      });
    }
    const named = { ...target(X), name: 'consul-server-1' };
    expect(planTarget(event('remove', 5), named, obs({}))).toMatchObject({
      reason: 'not-managed',
      steps: [],
    });
  });

  it('ignores an instance id in node metadata that is not a decimal id', () => {
    const hostile = node({ [nodeMetaKeys.instanceId]: '../../acl/bootstrap' });
    expect(resolveInstanceId(target(), { node: hostile })).toBeUndefined();
    expect(planTarget(event('drain', 5), target(), obs({ node: hostile }))).toMatchObject({
      decision: 'skip',
      steps: [],
    });
  });
});

describe('planTarget: maintenance bookkeeping', () => {
  const maintenance = (eventAt: number): Maintenance => ({ node: name, eventAt });

  it('does not drain twice', () => {
    const record: InstanceRecord = { maintenance: maintenance(3) };
    const plan = planTarget(
      event('drain', 5),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: X }), record }),
    );
    expect(plan).toMatchObject({ decision: 'skip', reason: 'already-draining' });
  });

  it('lifts only a drain set by an earlier event for this id', () => {
    const present = node({ [nodeMetaKeys.instanceId]: X });
    const older = planTarget(
      event('restore', 9),
      target(X),
      obs({ node: present, record: { maintenance: maintenance(3) } }),
    );
    expect(older).toMatchObject({
      decision: 'restore',
      steps: [{ type: 'undrain', node: name, instanceId: X }],
    });
    const newer = planTarget(
      event('restore', 2),
      target(X),
      obs({ node: present, record: { maintenance: maintenance(3) } }),
    );
    expect(newer).toMatchObject({ decision: 'skip', reason: 'superseded' });
    const none = planTarget(event('restore', 9), target(X), obs({ node: present }));
    expect(none).toMatchObject({ decision: 'skip', reason: 'no-maintenance' });
  });

  it('clears the drain key of a node that is gone, on restore and on removal', () => {
    const record = { maintenance: maintenance(3) };
    expect(planTarget(event('restore', 9), target(X), obs({ record }))).toMatchObject({
      decision: 'restore',
      reason: 'node-gone',
      steps: [{ type: 'undrain', node: name, instanceId: X }],
    });
    const removed = planTarget(
      event('remove', 9),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: X }), record }),
    );
    expect(removed.steps.map((s) => s.type)).toEqual(['deregister', 'undrain', 'force-leave']);
    // Recreated under the same name: the new node stays, the old id's drain key goes.
    const replaced = planTarget(
      event('remove', 9, { method: 'compute.instances.delete' }),
      target(X),
      obs({ node: node({ [nodeMetaKeys.instanceId]: Y }), record }),
    );
    expect(replaced).toMatchObject({
      decision: 'skip',
      reason: 'replacement-present',
      steps: [
        { type: 'undrain', node: name, instanceId: X },
        { type: 'forget-instance', instanceId: X },
      ],
    });
  });

  it('mergeRecord keeps the latest time whatever the merge order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('drainAt', 'restoreAt' as const), fc.nat()), {
          maxLength: 8,
        }),
        (marks) => {
          const apply = (list: typeof marks) =>
            list.reduce<InstanceRecord>((r, [field, at]) => mergeRecord(r, { field, at }, undefined), {});
          expect(apply([...marks].reverse())).toEqual(apply(marks));
        },
      ),
    );
  });
});

/**
 * Law: applying one instance's events in any order, with duplicates, ends where time order ends.
 * The world is a model of Consul for one node name: a live agent re-registers its node after a
 * deregistration (anti-entropy) and keeps its maintenance across that; a dead one does neither.
 */
describe('ordering and duplication law', () => {
  interface World {
    running: boolean;
    node: { modifyIndex: number } | null;
    /** The node's key in the drain list: the instance id it names. */
    drainKey: string | null;
    record: InstanceRecord | null;
  }

  const apply = (world: World, e: InstanceEvent): 'done' | 'retry' => {
    const current = world.node ? node({ [nodeMetaKeys.instanceId]: X }, world.node.modifyIndex) : null;
    const plan = planTarget(e, e.targets[0] ?? target(X), obs({ node: current, record: world.record }));
    if (plan.decision === 'retry') return 'retry';
    let maintenance: Maintenance | null | undefined;
    for (const step of plan.steps) {
      if (step.type === 'drain') {
        world.drainKey = step.instanceId;
        maintenance = { node: step.node, eventAt: e.time };
      } else if (step.type === 'undrain') {
        if (world.drainKey === step.instanceId) world.drainKey = null;
        maintenance = null;
      } else if (step.type === 'forget-instance') {
        world.record = null;
        return 'done';
      } else if (step.type === 'deregister') {
        if (world.node?.modifyIndex !== step.modifyIndex) return 'done';
        // A live agent registers its node again at its next anti-entropy sync.
        world.node = world.running ? { modifyIndex: step.modifyIndex + 1 } : null;
      }
    }
    if (plan.mark || maintenance !== undefined)
      world.record = mergeRecord(world.record, plan.mark, maintenance);
    return 'done';
  };

  const run = (events: InstanceEvent[], running: boolean) => {
    const world: World = { running, node: { modifyIndex: 1 }, drainKey: null, record: null };
    let queue = events;
    // Redeliveries of what asked for a retry, as Pub/Sub would.
    for (let round = 0; round < 5 && queue.length > 0; round++)
      queue = queue.filter((e) => apply(world, e) === 'retry');
    const drained = world.node !== null && world.drainKey === X;
    return { present: world.node !== null, drained };
  };

  const timeline = fc
    .uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 })
    .chain((times) =>
      fc.tuple(
        fc.array(fc.constantFrom<EventAction>('drain', 'remove', 'restore'), {
          minLength: times.length,
          maxLength: times.length,
        }),
        fc.constant(times),
      ),
    )
    .map(([actions, times]) => times.map((t, i) => event(actions[i] ?? 'drain', t)));

  it('holds for every permutation with duplicates', () => {
    fc.assert(
      fc.property(
        timeline,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        (events, duplicates, noise) => {
          const inTime = [...events].sort((a, b) => a.time - b.time);
          const last = inTime[inTime.length - 1];
          const running = last?.action !== 'remove';
          const delivered = [...events, ...duplicates.map((d) => events[d % events.length] as InstanceEvent)];
          const keys = delivered.map(() => noise.next().value as number);
          const shuffled = delivered
            .map((e, i) => ({ e, k: keys[i] ?? 0 }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.e);
          expect(run(shuffled, running)).toEqual(run(inTime, running));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('ends where the last event in time says', () => {
    fc.assert(
      fc.property(timeline, (events) => {
        const inTime = [...events].sort((a, b) => a.time - b.time);
        const last = inTime[inTime.length - 1] as InstanceEvent;
        const outcome = run([...events].reverse(), last.action !== 'remove');
        if (last.action === 'remove') expect(outcome.present).toBe(false);
        else expect(outcome).toEqual({ present: true, drained: last.action === 'drain' });
      }),
      { numRuns: 300 },
    );
  });
});
