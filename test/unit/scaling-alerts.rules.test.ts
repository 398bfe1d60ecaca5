import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseNotification, type Incident } from '../../shared/scaling-alerts/notification';
import {
  autoscalerKey,
  matchIncident,
  parseRuleFile,
  type RuleFile,
} from '../../shared/scaling-alerts/rules';
import { eventFixture } from '../fixtures/events';

const examplePath = path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json');
const exampleJson = () => JSON.parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
const example = (): RuleFile => {
  const r = parseRuleFile(exampleJson());
  if (!r.ok) throw new Error(r.reason);
  return r.rules;
};

const openIncident = (): Incident => {
  const r = parseNotification(eventFixture('monitoring-incident-open.json'));
  if (!r.ok) throw new Error(r.reason);
  return r.incident;
};
const incident = (patch: Partial<Incident>): Incident => ({ ...openIncident(), ...patch });

describe('the rule file', () => {
  it('the documented example is valid and gets its defaults', () => {
    const rules = example();
    expect(rules.tiers.haproxy?.autoscalers).toHaveLength(2);
    expect(rules.tiers.backend?.allowModeChange).toBe(false);
    expect(rules.rules.map((r) => r.scope)).toEqual(['incident-zone', 'all', 'all']);
  });

  it.each([
    ['an unknown field', (j: Record<string, unknown>) => ({ ...j, extra: 1 })],
    [
      'a rule naming an unknown tier',
      (j: Record<string, unknown>) => ({
        ...j,
        rules: [{ name: 'x', match: {}, tier: 'nope', change: { type: 'mode', mode: 'ONLY_SCALE_OUT' } }],
      }),
    ],
    ['no ownership', (j: Record<string, unknown>) => ({ ...j, ownership: { namePrefixes: [] } })],
    ['a floor above the ceiling', (j: Record<string, unknown>) => withTier(j, { floor: 9, ceiling: 8 })],
    [
      'a lease shorter than GCE allows',
      (j: Record<string, unknown>) => withTier(j, { lease: { defaultSec: 60, maxSec: 600 } }),
    ],
    [
      'an autoscaler both zonal and regional',
      (j: Record<string, unknown>) =>
        withTier(j, { autoscalers: [{ zone: 'us-central1-b', region: 'us-central1', name: 'ilb-x' }] }),
    ],
    [
      'a raise-min with both by and to',
      (j: Record<string, unknown>) => ({
        ...j,
        rules: [{ name: 'x', match: {}, tier: 'haproxy', change: { type: 'raise-min', by: 1, to: 3 } }],
      }),
    ],
    [
      'a mode other than ONLY_SCALE_OUT',
      (j: Record<string, unknown>) => ({
        ...j,
        rules: [{ name: 'x', match: {}, tier: 'haproxy', change: { type: 'mode', mode: 'OFF' } }],
      }),
    ],
    [
      'a CPU target above 1',
      (j: Record<string, unknown>) => ({
        ...j,
        rules: [{ name: 'x', match: {}, tier: 'haproxy', change: { type: 'cpu-target', target: 1.5 } }],
      }),
    ],
  ])('refuses %s with a reason', (_what, edit) => {
    const r = parseRuleFile(edit(exampleJson()));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/^invalid rule file: /) });
  });
});

function withTier(j: Record<string, unknown>, patch: Record<string, unknown>) {
  const tiers = j.tiers as Record<string, Record<string, unknown>>;
  return { ...j, tiers: { ...tiers, haproxy: { ...tiers.haproxy, ...patch } } };
}

describe('matchIncident', () => {
  it('a named rule takes precedence over the default label rule', () => {
    const m = matchIncident(openIncident(), example());
    if (!m.ok) throw new Error(m.reason);
    expect(m.target).toMatchObject({
      rule: 'haproxy-request-rate',
      tierName: 'haproxy',
      change: { type: 'raise-min', by: 2 },
      leaseSec: 3600,
    });
    // Only the autoscaler in the incident's zone.
    expect(m.target.autoscalers.map(autoscalerKey)).toEqual([
      'projects/ilb-demo/zones/us-central1-b/autoscalers/ilb-haproxy-us-central1-b',
    ]);
  });

  it('the default rule reads tier and action labels, as in the samples', () => {
    const m = matchIncident(incident({ policyName: 'other', metricType: 'other' }), example());
    if (!m.ok) throw new Error(m.reason);
    expect(m.target).toMatchObject({
      rule: 'labels-tier-action',
      tierName: 'haproxy',
      change: { type: 'raise-min', by: 2 },
    });
  });

  it.each([
    ['lower-cpu-target', { type: 'cpu-target', target: 0.5 }],
    ['hold-scale-in', { type: 'scale-in-control', maxScaledInReplicas: 0, timeWindowSec: 1800 }],
    ['scale-out-only', { type: 'mode', mode: 'ONLY_SCALE_OUT' }],
  ])('action=%s chooses a change the default rule allows', (action, change) => {
    const m = matchIncident(
      incident({ policyName: 'p', userLabels: { tier: 'haproxy', action } }),
      example(),
    );
    expect(m).toMatchObject({ ok: true, target: { change } });
  });

  it('labels cannot ask for what the rules do not allow', () => {
    const m = matchIncident(
      incident({ policyName: 'p', userLabels: { tier: 'haproxy', action: 'delete-everything' } }),
      example(),
    );
    expect(m).toEqual({
      ok: false,
      reason: 'rule labels-tier-action: action "delete-everything" is not allowed',
    });
    const proto = matchIncident(
      incident({ policyName: 'p', userLabels: { tier: 'haproxy', action: 'toString' } }),
      example(),
    );
    expect(proto.ok).toBe(false);
  });

  it('refuses a tier that is not configured, even one named like an Object property', () => {
    for (const tier of ['database', '__proto__', 'constructor']) {
      const m = matchIncident(
        incident({ policyName: 'p', userLabels: { tier, action: 'raise-min' } }),
        example(),
      );
      expect(m).toEqual({ ok: false, reason: expect.stringMatching(/is not configured/) });
    }
  });

  it('an incident no rule matches says so', () => {
    const rules = { ...example(), useDefaultRules: false };
    expect(matchIncident(incident({ policyName: 'p' }), rules)).toEqual({
      ok: false,
      reason: 'no rule matches the incident',
    });
    expect(matchIncident(incident({ policyName: 'p', userLabels: {} }), example())).toEqual({
      ok: false,
      reason: 'no rule matches the incident',
    });
  });

  it('matches labels and the action chosen by label on an explicit rule', () => {
    const m = matchIncident(
      incident({ policyName: 'p', userLabels: { tier: 'backend', action: 'lower-rate-target' } }),
      example(),
    );
    expect(m).toMatchObject({
      ok: true,
      target: {
        rule: 'backend-by-label',
        change: { type: 'custom-metric-target', target: 80 },
        leaseSec: 1800,
      },
    });
    const latency = matchIncident(
      incident({ policyName: 'p', userLabels: { tier: 'backend', signal: 'latency' } }),
      example(),
    );
    expect(latency).toMatchObject({
      ok: true,
      target: { rule: 'backend-latency', change: { type: 'cpu-target' } },
    });
  });

  it('a regional autoscaler covers every zone of its region; other zones find nothing', () => {
    const inZone = matchIncident(
      incident({
        policyName: 'p',
        userLabels: { tier: 'backend', action: 'raise-min' },
        resourceLabels: { zone: 'us-central1-c' },
      }),
      example(),
    );
    if (!inZone.ok) throw new Error(inZone.reason);
    expect(inZone.target.autoscalers.map((a) => a.name)).toEqual(['ilb-backend']);

    const rules = example();
    const zonal = matchIncident(incident({ resourceLabels: { zone: 'europe-west1-b' } }), rules);
    expect(zonal).toEqual({
      ok: false,
      reason: expect.stringMatching(/no autoscaler in the incident's zone/),
    });
  });

  it('without a zone on the resource every autoscaler of the tier is concerned', () => {
    const m = matchIncident(incident({ resourceLabels: {} }), example());
    if (!m.ok) throw new Error(m.reason);
    expect(m.target.autoscalers).toHaveLength(2);
  });

  it('bounds a rule lease by the tier', () => {
    const json = exampleJson();
    const rules = (json.rules as Record<string, unknown>[]).map((r, i) =>
      i === 0 ? { ...r, leaseSec: 86_400 } : r,
    );
    const parsed = parseRuleFile({ ...json, rules });
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(matchIncident(openIncident(), parsed.rules)).toMatchObject({
      ok: true,
      target: { leaseSec: 7200 },
    });
  });
});
