import fc from 'fast-check';
import { parseNotification, parseNotificationText } from '../../shared/scaling-alerts/notification';
import { eventFixture, readEventFixture } from '../fixtures/events';

type Json = Record<string, unknown>;
const open = () => eventFixture<{ incident: Json; version: string }>('monitoring-incident-open.json');
const closed = () => eventFixture<{ incident: Json; version: string }>('monitoring-incident-closed.json');
const withIncident = (n: { incident: Json; version: string }, patch: Json) => ({
  ...n,
  incident: { ...n.incident, ...patch },
});

describe('parseNotification on the fixtures', () => {
  it('reads an open incident with its labels, resource and times in ms', () => {
    const result = parseNotification(open());
    expect(result).toEqual({
      ok: true,
      incident: {
        id: '0.nl3v8fkx2a1q',
        state: 'open',
        cancelled: false,
        policyName: 'haproxy-high-request-rate',
        policyId: 'projects/ilb-demo/alertPolicies/1234567890123456789',
        conditionId: '9876543210987654321',
        conditionName: 'HAProxy request rate per instance above 800/s',
        userLabels: { tier: 'haproxy', action: 'raise-min' },
        metricType: 'custom.googleapis.com/ilb/haproxy/request_rate',
        metricLabels: {},
        resourceType: 'gce_instance',
        resourceLabels: { instance_id: '7712345678901234501', project_id: 'ilb-demo', zone: 'us-central1-b' },
        project: 'ilb-demo',
        startedAt: 1764152400_000,
        endedAt: undefined,
        time: 1764152400_000,
        observedValue: 1042.5,
        thresholdValue: 800,
      },
    });
  });

  it('reads the closing of the same incident, ordered by its end', () => {
    const result = parseNotification(closed());
    if (!result.ok) throw new Error(result.reason);
    expect(result.incident).toMatchObject({
      id: '0.nl3v8fkx2a1q',
      state: 'closed',
      cancelled: false,
      endedAt: 1764156000_000,
      time: 1764156000_000,
      observedValue: 612,
    });
  });

  it("acknowledges the console's test notification and nothing else", () => {
    const result = parseNotification(eventFixture('monitoring-notification-test.json'));
    expect(result).toEqual({
      ok: false,
      outcome: 'ignored',
      reason: expect.stringMatching(/test notification/),
    });
  });

  it('parses the raw message text the same way', () => {
    expect(parseNotificationText(readEventFixture('monitoring-incident-open.json'))).toEqual(
      parseNotification(open()),
    );
    expect(parseNotificationText('{not json')).toMatchObject({ ok: false, outcome: 'malformed' });
  });
});

describe('parseNotification: closures, versions and shapes', () => {
  it('counts an incident cancelled by a policy change as closed', () => {
    const text =
      'Incident cancelled because the alert policy condition was deleted or modified while incident was active.';
    const result = parseNotification(
      withIncident(closed(), {
        observed_value: text,
        summary: `… returned to normal with a value of ${text}.`,
      }),
    );
    if (!result.ok) throw new Error(result.reason);
    expect(result.incident).toMatchObject({ state: 'closed', cancelled: true, observedValue: undefined });
  });

  it.each([
    ['1.1', /version "1\.1" is not 1\.2/],
    ['2.0', /version "2\.0" is not 1\.2/],
  ])('ignores schema version %s with a clear reason', (version, reason) => {
    expect(parseNotification({ ...open(), version })).toEqual({
      ok: false,
      outcome: 'ignored',
      reason: expect.stringMatching(reason),
    });
  });

  it.each(['OPEN', 'acknowledged', ''])('ignores a 1.2 notification whose state is %j', (state) => {
    expect(parseNotification(withIncident(open(), { state }))).toMatchObject({
      ok: false,
      outcome: 'ignored',
      incidentId: '0.nl3v8fkx2a1q',
    });
  });

  it.each([
    ['no incident', { version: '1.2' }],
    ['no incident id', withIncident(open(), { incident_id: undefined })],
    ['an incident id with a slash', withIncident(open(), { incident_id: '0.x/../y' })],
    ['an incident id like __proto__', withIncident(open(), { incident_id: '__proto__' })],
    ['a start in milliseconds as text', withIncident(open(), { started_at: '2026-11-26T10:00:00Z' })],
    ['a closed incident without ended_at', withIncident(closed(), { ended_at: null })],
    ['an end before the start', withIncident(closed(), { ended_at: 1 })],
    ['labels that are not strings', withIncident(open(), { policy_user_labels: { tier: 3 } })],
    [
      'a huge label map',
      withIncident(open(), {
        policy_user_labels: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'])),
      }),
    ],
  ])('rejects %s as malformed', (_what, input) => {
    expect(parseNotification(input)).toMatchObject({ ok: false, outcome: 'malformed' });
  });

  it('accepts label values up to 1,024 characters and keys up to 100, as Monitoring allows them', () => {
    const value = 'v'.repeat(1024);
    const key = `k${'e'.repeat(99)}`;
    const result = parseNotification(
      withIncident(open(), {
        policy_user_labels: { tier: 'haproxy', note: value },
        metric: { type: 'custom.googleapis.com/x', labels: { [key]: value } },
        resource: { type: 'gce_instance', labels: { instance_id: value } },
      }),
    );
    if (!result.ok) throw new Error(result.reason);
    expect(result.incident).toMatchObject({
      userLabels: { tier: 'haproxy', note: value },
      metricLabels: { [key]: value },
      resourceLabels: { instance_id: value },
    });
    // One more character is past Monitoring's bounds: malformed, not truncated.
    for (const patch of [
      { policy_user_labels: { note: `${value}v` } },
      { metric: { labels: { x: `${value}v` } } },
      { resource: { labels: { [`${key}y`]: 'v' } } },
    ])
      expect(parseNotification(withIncident(open(), patch))).toMatchObject({
        ok: false,
        outcome: 'malformed',
      });
  });

  it('rejects things that are not notifications at all', () => {
    for (const input of [null, 42, 'open', [], {}, { incident: {} }]) {
      expect(parseNotification(input)).toMatchObject({ ok: false, outcome: 'malformed' });
    }
  });

  it('accepts missing and null optional fields, and extra ones', () => {
    const minimal = {
      version: '1.2',
      incident: {
        incident_id: '0.abc',
        state: 'open',
        started_at: 1764152400,
        ended_at: null,
        extra: { x: 1 },
      },
    };
    const result = parseNotification(minimal);
    if (!result.ok) throw new Error(result.reason);
    expect(result.incident).toMatchObject({
      policyName: '',
      userLabels: {},
      resourceLabels: {},
      metricLabels: {},
    });
    const nulls = withIncident(open(), {
      policy_user_labels: null,
      resource: null,
      metric: null,
      condition: null,
    });
    expect(parseNotification(nulls).ok).toBe(true);
  });

  it('never throws, whatever arrives', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.record({ version: fc.constant('1.2'), incident: fc.anything() })),
        (input) => {
          const result = parseNotification(input);
          expect(typeof result.ok).toBe('boolean');
        },
      ),
    );
  });
});
