import {
  clampTimes,
  confirmIncident,
  timeBounds,
  type AlertPolicy,
} from '../../shared/scaling-alerts/confirm';
import { parseNotification, type Incident } from '../../shared/scaling-alerts/notification';
import { boundRecord, emptyState, recordBounds } from '../../shared/scaling-alerts/state';
import { eventFixture } from '../fixtures/events';

const fixture = (): Incident => {
  const r = parseNotification(eventFixture('monitoring-incident-open.json'));
  if (!r.ok) throw new Error(r.reason);
  return r.incident;
};

const policy = (over: Partial<AlertPolicy> = {}): AlertPolicy => ({
  name: 'projects/ilb-demo/alertPolicies/1234567890123456789',
  displayName: 'real name',
  userLabels: { tier: 'frontend', action: 'hold-scale-in' },
  enabled: { value: true },
  conditions: [
    {
      name: 'projects/ilb-demo/alertPolicies/1234567890123456789/conditions/9876543210987654321',
      conditionThreshold: { filter: 'metric.type="custom.googleapis.com/ilb/haproxy/request_rate"' },
    },
  ],
  ...over,
});

const port = (p: AlertPolicy | null) => {
  const asked: string[] = [];
  return { asked, get: (name: string) => (asked.push(name), Promise.resolve(p)) };
};

describe('confirmIncident', () => {
  it("reads the policy in our project and matches on its labels, never the message's", async () => {
    const p = port(policy());
    const r = await confirmIncident(fixture(), 'our-project', p);
    expect(p.asked).toEqual(['projects/our-project/alertPolicies/1234567890123456789']);
    expect(r).toMatchObject({
      ok: true,
      incident: {
        policyName: 'real name',
        userLabels: { tier: 'frontend', action: 'hold-scale-in' },
        metricType: 'custom.googleapis.com/ilb/haproxy/request_rate',
      },
    });
  });

  it.each([
    ['policy-not-found', null],
    ['policy-disabled', policy({ enabled: false })],
    [
      'condition-not-in-policy',
      policy({ conditions: [{ name: 'projects/p/alertPolicies/1/conditions/2' }] }),
    ],
  ])('refuses: %s', async (kind, p) => {
    expect(await confirmIncident(fixture(), 'our-project', port(p))).toMatchObject({ ok: false, kind });
  });

  it('refuses a notification that names no condition, or with no project configured', async () => {
    const p = port(policy());
    expect(await confirmIncident({ ...fixture(), policyId: undefined }, 'x', p)).toMatchObject({
      kind: 'no-policy',
    });
    expect(await confirmIncident(fixture(), undefined, p)).toMatchObject({ kind: 'no-project' });
    expect(p.asked).toEqual([]);
  });

  it("drops a metric type the condition's filter does not name", async () => {
    const r = await confirmIncident(
      { ...fixture(), metricType: 'custom.googleapis.com/other' },
      'x',
      port(policy()),
    );
    expect(r.ok && r.incident.metricType).toBeUndefined();
  });
});

describe('clampTimes', () => {
  it('keeps started_at and ended_at within [now - max age, now + skew]', () => {
    const now = 1_800_000_000_000;
    const c = clampTimes(
      { ...fixture(), state: 'closed', startedAt: 0, endedAt: now * 10, time: now * 10 },
      now,
    );
    expect(c.startedAt).toBe(now - timeBounds.maxAgeMs);
    expect(c.endedAt).toBe(now + timeBounds.skewMs);
    expect(c.time).toBe(c.endedAt);
  });
});

describe('boundRecord', () => {
  it('keeps the newest tombstones within count, age and size; an unchanged record stays identical', () => {
    const now = 1_800_000_000_000;
    const closed: Record<string, number> = {};
    for (let i = 0; i < 5000; i++) closed[`0.${'x'.repeat(118)}${i}`] = now - i;
    closed['0.old'] = now - 8 * 24 * 3600_000;
    const bounded = boundRecord({ ...emptyState(), closed }, now, 7 * 24 * 3600_000);
    expect(Object.keys(bounded.closed)).toHaveLength(recordBounds.tombstones);
    expect(bounded.closed).not.toHaveProperty('0.old');
    expect(Math.min(...Object.values(bounded.closed))).toBe(now - recordBounds.tombstones + 1);
    expect(Buffer.byteLength(JSON.stringify(bounded))).toBeLessThan(recordBounds.bytes);
    const small = { ...emptyState(), closed: { b: now, a: now - 1 } };
    expect(JSON.stringify(boundRecord(small, now, 1000))).toBe(JSON.stringify(small));
  });
});
