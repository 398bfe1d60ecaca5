import { GroupErrors, groupErrorView } from '../../infra-scripts/local/compute-emulator/group-errors';

describe('GroupErrors: injected creation errors and their record', () => {
  const group = 'zones/us-central1-a/ilb-haproxy-mig';
  const instance = 'https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/i';

  it('a count fails that many attempts, then none', () => {
    const e = new GroupErrors(() => 0);
    e.inject(group, { code: 'QUOTA_EXCEEDED', message: 'quota', count: 2 });
    expect([e.failure(group), e.failure(group), e.failure(group)].map((f) => f?.code)).toEqual([
      'QUOTA_EXCEEDED',
      'QUOTA_EXCEEDED',
      undefined,
    ]);
    expect(e.failure('zones/us-central1-a/other')).toBeUndefined();
  });

  it('`until` holds until the clock reaches it; clear ends it at once', () => {
    let now = 1000;
    const e = new GroupErrors(() => now);
    e.inject(group, { code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'stock', untilMs: 2000 });
    expect(e.failure(group)?.code).toBe('ZONE_RESOURCE_POOL_EXHAUSTED');
    now = 2000;
    expect(e.failure(group)).toBeUndefined();
    e.inject(group, { code: 'QUOTA_EXCEEDED', message: 'quota' });
    expect(e.failure(group)).toBeDefined();
    e.clear(group);
    expect(e.failure(group)).toBeUndefined();
  });

  it('records each failed attempt in order, as listErrors items', () => {
    let now = Date.parse('2026-12-05T00:00:00Z');
    const e = new GroupErrors(() => now);
    const failure = { code: 'QUOTA_EXCEEDED', message: 'quota' };
    e.record(group, instance, failure);
    e.record(group, instance, failure);
    now += 1000;
    e.record(group, instance, failure);
    const list = e.list(group);
    expect(list.map((x) => x.key)).toEqual([...list.map((x) => x.key)].sort());
    expect(new Set(list.map((x) => x.key)).size).toBe(3);
    expect(groupErrorView(list[2]!)).toEqual({
      error: { code: 'QUOTA_EXCEEDED', message: 'quota' },
      instanceActionDetails: { action: 'CREATING', instance },
      timestamp: '2026-12-05T00:00:01.000Z',
    });
    expect(e.list('zones/us-central1-a/other')).toEqual([]);
  });
});
