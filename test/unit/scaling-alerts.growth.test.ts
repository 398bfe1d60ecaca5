import { autoscalerSchema } from '../../shared/gcp/autoscaler-schema';
import { groupRefOf, type GroupError, type GroupErrorsApi } from '../../shared/gcp/groups';
import {
  creationErrorPoints,
  growthMetrics,
  readGrowth,
  unreachableFloor,
  type Growth,
} from '../../shared/scaling-alerts/growth';

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
