import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config';
import { parseHealthSweepConfig, resolveBudget, scopeHolds } from '../../shared/health-sweep/config';

const group = { project: 'ilb-demo', zone: 'us-central1-a', name: 'backend-a', role: 'backend' };

describe('parseHealthSweepConfig', () => {
  it('reads the documented example', () => {
    const file = join(__dirname, '../../infra-scripts/config/health-sweep.example.json');
    const config = parseHealthSweepConfig(JSON.parse(readFileSync(file, 'utf8')));
    expect(config.groups.map((g) => g.key)).toEqual([
      'projects/ilb-demo/zones/us-central1-a/instanceGroupManagers/backend-a',
      'projects/ilb-demo/zones/us-central1-b/instanceGroupManagers/backend-b',
      'projects/ilb-demo/regions/us-central1/instanceGroupManagers/haproxy',
    ]);
    const haproxy = config.groups[2];
    expect(haproxy).toMatchObject({
      role: 'haproxy',
      scope: { kind: 'region', region: 'us-central1' },
      maxRecreations: { kind: 'count', count: 1 },
      healthyMinimum: { kind: 'count', count: 2 },
    });
    expect(config.groups[0]?.maxRecreations).toEqual({ kind: 'percent', percent: 10 });
  });

  it('fills conservative defaults', () => {
    expect(parseHealthSweepConfig({ groups: [group] })).toEqual({
      groups: [
        {
          key: 'projects/ilb-demo/zones/us-central1-a/instanceGroupManagers/backend-a',
          project: 'ilb-demo',
          name: 'backend-a',
          role: 'backend',
          scope: { kind: 'zone', zone: 'us-central1-a' },
          maxRecreations: { kind: 'count', count: 1 },
          healthyMinimum: { kind: 'percent', percent: 50 },
        },
      ],
      thresholds: {
        absentSweeps: 3,
        brokenGraceMs: 300_000,
        bootGraceMs: 600_000,
        tokenBucket: { ratePerMinute: 6, burst: 10 },
        zoneDeadThreshold: 0.55,
      },
      repairOrphans: false,
      identity: { removeUnproven: true, maxFindings: 100 },
      reads: { nodeChecksMaxBytes: 256 * 1024, nodeMaxBytes: 64 * 1024, maxNodeReads: 2000 },
    });
  });

  it.each([
    ['no group', { groups: [] }],
    ['a group with zone and region', { groups: [{ ...group, region: 'us-central1' }] }],
    ['a group without zone or region', { groups: [{ project: 'ilb-demo', name: 'x', role: 'backend' }] }],
    ['an unknown field (a typo)', { groups: [group], repairOrphan: true }],
    ['an unknown threshold', { groups: [group], thresholds: { absentSweep: 3 } }],
    ['a bad zone', { groups: [{ ...group, zone: 'us-central1' }] }],
    ['a name that is not a resource name', { groups: [{ ...group, name: 'Backend_A' }] }],
    ['a path in a project', { groups: [{ ...group, project: 'ilb-demo/zones' }] }],
    ['N of 0', { groups: [group], thresholds: { absentSweeps: 0 } }],
    ['a negative grace', { groups: [group], thresholds: { brokenGraceSeconds: -1 } }],
    ['a fractional budget', { groups: [group], thresholds: { maxRecreations: 1.5 } }],
    ['a percentage over 100', { groups: [group], thresholds: { healthyMinimum: '150%' } }],
    ['a budget that is not a percentage', { groups: [group], thresholds: { healthyMinimum: 'half' } }],
    ['a zero rate', { groups: [group], thresholds: { tokenBucket: { ratePerMinute: 0 } } }],
    ['a zero dead threshold', { groups: [group], thresholds: { zoneDeadThreshold: 0 } }],
    ['a dead threshold over 1', { groups: [group], thresholds: { zoneDeadThreshold: 1.5 } }],
    [
      'a per-node cap over the layer cap',
      { groups: [group], reads: { nodeChecksMaxBytes: 9 * 1024 * 1024 } },
    ],
    ['a node entry cap under 4 KiB', { groups: [group], reads: { nodeMaxBytes: 1024 } }],
    ['no per-node reads', { groups: [group], reads: { maxNodeReads: 0 } }],
    ['an unknown reads field', { groups: [group], reads: { maxBytes: 1 } }],
    ['the same group twice', { groups: [group, { ...group, role: 'other' }] }],
    [
      'a zonal and a regional group of the same name in one region',
      { groups: [group, { ...group, zone: undefined, region: 'us-central1' }] },
    ],
    ['not an object', 'groups'],
  ])('rejects %s', (_what, input) => {
    expect(() => parseHealthSweepConfig(JSON.parse(JSON.stringify(input)))).toThrow(ConfigError);
  });

  it('names every problem', () => {
    expect(() =>
      parseHealthSweepConfig({ groups: [{ ...group, zone: 'nowhere' }], thresholds: { absentSweeps: 0 } }),
    ).toThrow(/groups\.0.*thresholds\.absentSweeps|thresholds\.absentSweeps.*groups\.0/);
  });

  it('allows groups of the same name in different zones', () => {
    const config = parseHealthSweepConfig({ groups: [group, { ...group, zone: 'us-central1-b' }] });
    expect(config.groups).toHaveLength(2);
  });
});

describe('budgets and scopes', () => {
  it.each([
    [{ kind: 'count', count: 3 } as const, 10, 'up', 3],
    [{ kind: 'percent', percent: 50 } as const, 5, 'up', 3],
    [{ kind: 'percent', percent: 50 } as const, 5, 'down-min-one', 2],
    [{ kind: 'percent', percent: 10 } as const, 5, 'down-min-one', 1],
    [{ kind: 'percent', percent: 0 } as const, 5, 'down-min-one', 0],
    [{ kind: 'percent', percent: 10 } as const, 0, 'down-min-one', 0],
    [{ kind: 'percent', percent: 100 } as const, 7, 'up', 7],
  ] as const)('%j of %i rounds %s to %i', (budget, size, round, expected) => {
    expect(resolveBudget(budget, size, round)).toBe(expected);
  });

  it('a region holds its zones only', () => {
    expect(scopeHolds({ kind: 'region', region: 'us-central1' }, 'us-central1-f')).toBe(true);
    expect(scopeHolds({ kind: 'region', region: 'us-central1' }, 'us-central11-a')).toBe(false);
    expect(scopeHolds({ kind: 'zone', zone: 'us-central1-a' }, 'us-central1-b')).toBe(false);
  });
});
