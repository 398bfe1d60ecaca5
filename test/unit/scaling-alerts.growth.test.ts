import { readFileSync } from 'node:fs';
import path from 'node:path';
import { autoscalerSchema } from '../../shared/gcp/autoscaler-schema';
import { groupRefOf, type GroupError, type GroupErrorsApi } from '../../shared/gcp/groups';
import {
  creationErrorPoints,
  growthMetrics,
  readGrowth,
  unreachableFloor,
  type Growth,
} from '../../shared/scaling-alerts/growth';
import type { Incident } from '../../shared/scaling-alerts/notification';
import { metricTypes, planIncident, type PlanContext } from '../../shared/scaling-alerts/plan';
import { parseRuleFile, type Change, type Tier } from '../../shared/scaling-alerts/rules';

const examplePath = path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json');
const parsed = parseRuleFile(JSON.parse(readFileSync(examplePath, 'utf8')));
if (!parsed.ok) throw new Error(parsed.reason);
const rules = parsed.rules;
const tier: Tier = { ...(rules.tiers.haproxy as Tier), cooldownSec: 0, maxChangesPerHour: 1000 };
const ref = tier.autoscalers[0]!;
const T0 = Date.parse('2026-11-26T10:00:30Z');

const groupUrl =
  'https://compute.googleapis.com/compute/v1/projects/ilb-demo/zones/us-central1-b/instanceGroupManagers/ilb-haproxy-us-central1-b';
const group = groupRefOf(groupUrl)!;

const growth = (over: Partial<Growth> = {}): Growth => ({
  group,
  reached: 2,
  creating: 2,
  blockedBy: ['QUOTA_EXCEEDED'],
  ...over,
});

describe('unreachableFloor: a group stuck on capacity does not get a floor above its size', () => {
  it('refuses a floor above what a group with capacity errors and pending creations has', () => {
    expect(unreachableFloor(4, growth())).toBe(
      'unreachable-floor: ilb-haproxy-us-central1-b has 2 instances and cannot create more ' +
        '(QUOTA_EXCEEDED; 2 pending); floor 4 not raised',
    );
  });

  it.each([
    ['nothing is known of the group', 4, undefined],
    ['no capacity error in the window', 4, growth({ blockedBy: [] })],
    ['nothing pending: the errors are history, the group grew again', 4, growth({ creating: 0 })],
    ['the floor is within what the group has', 2, growth()],
  ])('raises it when %s', (_what, floor, g) => {
    expect(unreachableFloor(floor, g)).toBeNull();
  });
});

describe('groupRefOf: the autoscaler target as a group', () => {
  it('reads zonal and regional group URLs and partial paths', () => {
    expect(group).toEqual({
      key: 'projects/ilb-demo/zones/us-central1-b/instanceGroupManagers/ilb-haproxy-us-central1-b',
      project: 'ilb-demo',
      name: 'ilb-haproxy-us-central1-b',
      scope: { kind: 'zone', zone: 'us-central1-b' },
    });
    expect(groupRefOf('projects/p/regions/europe-west1/instanceGroupManagers/g')).toMatchObject({
      project: 'p',
      name: 'g',
      scope: { kind: 'region', region: 'europe-west1' },
    });
  });

  it.each(['', 'projects/p/zones/z/instanceGroups/g', 'projects/p/global/instanceGroupManagers/g'])(
    'has none for %j',
    (url) => expect(groupRefOf(url)).toBeUndefined(),
  );
});

const error = (code: string, timestamp = '2026-11-26T10:00:00Z'): GroupError => ({
  code,
  message: code,
  timestamp,
});

describe('creation errors as metrics and growth', () => {
  it('counts the window’s errors per code, labelled with the group and its location', () => {
    const points = creationErrorPoints(group, [
      error('QUOTA_EXCEEDED'),
      error('QUOTA_EXCEEDED'),
      error('ZONE_RESOURCE_POOL_EXHAUSTED'),
    ]);
    expect(points).toEqual([
      {
        type: 'custom.googleapis.com/ilb/instance_creation_errors',
        labels: { group: 'ilb-haproxy-us-central1-b', location: 'us-central1-b', code: 'QUOTA_EXCEEDED' },
        value: 2,
      },
      {
        type: growthMetrics.creationErrors,
        labels: expect.objectContaining({ code: 'ZONE_RESOURCE_POOL_EXHAUSTED' }),
        value: 1,
      },
    ]);
  });

  it('reads the window and the size of the autoscaler’s group; only capacity codes block', async () => {
    const calls: unknown[] = [];
    const api: GroupErrorsApi = {
      listErrors: (g, window) => {
        calls.push({ group: g.key, ...window });
        return Promise.resolve({
          errors: [error('QUOTA_EXCEEDED'), error('CONDITION_NOT_MET'), error('QUOTA_EXCEEDED')],
          truncated: false,
        });
      },
      size: () => Promise.resolve({ targetSize: 5, creating: 3 }),
    };
    const autoscaler = autoscalerSchema.parse({ name: 'a', target: groupUrl, autoscalingPolicy: {} });
    const read = await readGrowth(api, autoscaler, T0);
    expect(calls).toEqual([{ group: group.key, sinceMs: T0 - 15 * 60_000, maxPages: 4 }]);
    expect(read?.growth).toEqual({ group, reached: 2, creating: 3, blockedBy: ['QUOTA_EXCEEDED'] });
    expect(await readGrowth(api, autoscalerSchema.parse({ name: 'a', autoscalingPolicy: {} }), T0)).toBe(
      undefined,
    );
  });
});

const incident = (id: string, state: 'open' | 'closed'): Incident => ({
  id,
  state,
  cancelled: false,
  policyName: 'p',
  userLabels: {},
  metricLabels: {},
  resourceLabels: { zone: 'us-central1-b' },
  startedAt: T0,
  endedAt: state === 'closed' ? T0 : undefined,
  time: T0,
});

const raise: Change = { type: 'raise-min', by: 2 };
const target = (change: Change) => ({
  rule: 'r',
  tierName: 'haproxy',
  tier,
  change,
  leaseSec: 3600,
  autoscalers: [ref],
});
const ctx = (g: Growth | undefined): PlanContext => ({
  rules,
  tierName: 'haproxy',
  tier,
  ref,
  autoscaler: autoscalerSchema.parse({
    name: 'ilb-haproxy-us-central1-b',
    target: groupUrl,
    autoscalingPolicy: { minNumReplicas: 2, maxNumReplicas: 10 },
  }),
  state: null,
  now: T0,
  ...(g ? { growth: g } : {}),
});

describe('planIncident with the group’s growth', () => {
  it('refuses a new floor the stuck group cannot reach: nothing recorded, nothing sent, the metric', () => {
    const plan = planIncident(incident('i1', 'open'), target(raise), ctx(growth()));
    expect(plan).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/^unreachable-floor: /),
    });
    expect(plan.patch).toBeUndefined();
    expect(plan.state).toBeUndefined();
    expect(plan.metrics).toEqual([
      { type: metricTypes.decision, labels: expect.objectContaining({ decision: 'refused' }), value: 1 },
      {
        type: 'custom.googleapis.com/ilb/scaling_alerts/unreachable_floor',
        labels: { group: 'ilb-haproxy-us-central1-b' },
        value: 1,
      },
    ]);
  });

  it('raises it once the group can grow, or when it is not known', () => {
    for (const g of [growth({ creating: 0, reached: 4 }), undefined]) {
      const plan = planIncident(incident('i1', 'open'), target(raise), ctx(g));
      expect(plan).toMatchObject({ decision: 'applied', reason: 'escalate' });
      expect(plan.metrics.map((m) => m.type)).not.toContain(growthMetrics.unreachableFloor);
    }
  });

  it('leaves other changes alone', () => {
    const plan = planIncident(
      incident('i1', 'open'),
      target({ type: 'mode', mode: 'ONLY_SCALE_OUT' } as Change),
      ctx(growth()),
    );
    expect(plan.reason).not.toMatch(/unreachable/);
  });
});
