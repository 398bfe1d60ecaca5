import { recommend, type AutoscaleInput } from '../../infra-scripts/local/compute-emulator/autoscaling';
import type { AutoscalingPolicy } from '../../infra-scripts/local/compute-emulator/state';

const metric = 'custom.googleapis.com/ilb/rate';
const policy = (p: Partial<AutoscalingPolicy> = {}): AutoscalingPolicy => ({
  minNumReplicas: 1,
  maxNumReplicas: 10,
  coolDownPeriodSec: 60,
  mode: 'ON',
  customMetricUtilizations: [{ metric, utilizationTarget: 100 }],
  ...p,
});
const at = (values: number[], ageSec = 120) => values.map((v) => ({ ageSec, metrics: { [metric]: v } }));
const input = (i: Partial<AutoscaleInput>): AutoscaleInput => ({
  policy: policy(),
  targetSize: 2,
  signals: at([100, 100]),
  history: [],
  now: 1_000_000,
  stabilizationSec: 600,
  ...i,
});

test('asks for ceil(mean * size / target) and clamps to [min, max]', () => {
  expect(recommend(input({ signals: at([150, 150]) })).recommendedSize).toBe(3);
  expect(recommend(input({ signals: at([100, 100]) })).recommendedSize).toBe(2);
  const capped = recommend(input({ signals: at([900, 900]), policy: policy({ maxNumReplicas: 5 }) }));
  expect(capped.recommendedSize).toBe(5);
  expect(capped.details.map((d) => d.type)).toEqual(['CAPPED_AT_MAX_NUM_REPLICAS']);
  expect(
    recommend(input({ signals: at([0, 0]), policy: policy({ minNumReplicas: 2 }) })).recommendedSize,
  ).toBe(2);
});

test('instances younger than the cool-down are ignored; no data keeps the size and says so', () => {
  const d = recommend(input({ signals: at([900, 900], 10) }));
  expect(d.recommendedSize).toBe(2);
  expect(d.details.map((x) => x.type)).toEqual(['MISSING_CUSTOM_METRIC_DATA_POINTS']);
});

test('the largest ask of several signals wins', () => {
  const p = policy({ cpuUtilization: { utilizationTarget: 0.5 } });
  const signals = [
    { ageSec: 100, cpu: 1, metrics: { [metric]: 10 } },
    { ageSec: 100, cpu: 1, metrics: { [metric]: 10 } },
  ];
  expect(recommend(input({ policy: p, signals })).recommendedSize).toBe(4);
});

test('scale-in waits for the highest raw recommendation in the stabilization window', () => {
  const history = [{ at: 1_000_000 - 300_000, raw: 4, size: 4 }];
  expect(recommend(input({ targetSize: 4, signals: at([10, 10, 10, 10]), history })).recommendedSize).toBe(4);
  const old = [{ at: 1_000_000 - 700_000, raw: 4, size: 4 }];
  expect(
    recommend(input({ targetSize: 4, signals: at([10, 10, 10, 10]), history: old })).recommendedSize,
  ).toBe(1);
});

test('scale-in control bounds the drop from the peak within its window', () => {
  const p = policy({ scaleInControl: { maxScaledInReplicas: { fixed: 2 }, timeWindowSec: 60 } });
  expect(
    recommend(input({ policy: p, targetSize: 6, signals: at(Array(6).fill(1)), stabilizationSec: 0 }))
      .recommendedSize,
  ).toBe(4);
  const pct = policy({ scaleInControl: { maxScaledInReplicas: { percent: 50 }, timeWindowSec: 60 } });
  expect(
    recommend(input({ policy: pct, targetSize: 6, signals: at(Array(6).fill(1)), stabilizationSec: 0 }))
      .recommendedSize,
  ).toBe(3);
});

test('mode OFF never changes the size; ONLY_SCALE_OUT only grows', () => {
  expect(recommend(input({ policy: policy({ mode: 'OFF' }), signals: at([900, 900]) })).recommendedSize).toBe(
    2,
  );
  const out = policy({ mode: 'ONLY_SCALE_OUT' });
  expect(recommend(input({ policy: out, signals: at([900, 900]) })).recommendedSize).toBe(10);
  expect(recommend(input({ policy: out, signals: at([1, 1]), stabilizationSec: 0 })).recommendedSize).toBe(2);
});
