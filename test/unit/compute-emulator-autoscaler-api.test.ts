import { normalizePolicy } from '../../infra-scripts/local/compute-emulator/autoscalers';
import { mergePatch } from '../../infra-scripts/local/compute-emulator/merge-patch';

describe('JSON merge patch (RFC 7396)', () => {
  it('merges nested objects, deletes keys set to null and replaces arrays and scalars', () => {
    const target = {
      a: 1,
      policy: { min: 1, max: 4, cpu: { target: 0.5, method: 'NONE' }, metrics: [1, 2] },
      schedules: { morning: { min: 3 }, evening: { min: 2 } },
    };
    expect(
      mergePatch(target, {
        policy: { max: 5, cpu: { target: null }, metrics: [3] },
        schedules: { evening: null, night: { min: 1 } },
        b: 'x',
      }),
    ).toEqual({
      a: 1,
      b: 'x',
      policy: { min: 1, max: 5, cpu: { method: 'NONE' }, metrics: [3] },
      schedules: { morning: { min: 3 }, night: { min: 1 } },
    });
    expect(target.policy.max).toBe(4);
  });

  it('keeps a __proto__ key as a plain field instead of changing the prototype', () => {
    const out = mergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });
});

describe('normalizePolicy', () => {
  it('a policy with no signal scales on CPU at 0.6', () => {
    expect(normalizePolicy({ maxNumReplicas: 3 })).toEqual({
      maxNumReplicas: 3,
      minNumReplicas: 1,
      coolDownPeriodSec: 60,
      mode: 'ON',
      customMetricUtilizations: [],
      cpuUtilization: { utilizationTarget: 0.6 },
    });
    expect(
      normalizePolicy({ maxNumReplicas: 3, cpuUtilization: { predictiveMethod: 'NONE' } }).cpuUtilization,
    ).toEqual({ predictiveMethod: 'NONE', utilizationTarget: 0.6 });
  });

  it('a custom metric or load-balancing signal gets no CPU default; the other fields are kept', () => {
    const p = normalizePolicy({
      maxNumReplicas: 3,
      loadBalancingUtilization: { utilizationTarget: 0.8 },
      stabilizationPeriodSec: 120,
      scalingSchedules: { s: { minRequiredReplicas: 2, schedule: '0 9 * * *', durationSec: 300 } },
    });
    expect(p.cpuUtilization).toBeUndefined();
    expect(p).toMatchObject({
      loadBalancingUtilization: { utilizationTarget: 0.8 },
      stabilizationPeriodSec: 120,
      scalingSchedules: { s: { minRequiredReplicas: 2 } },
    });
    expect(
      normalizePolicy({ maxNumReplicas: 3, customMetricUtilizations: [{ metric: 'm' }] }).cpuUtilization,
    ).toBeUndefined();
  });
});
