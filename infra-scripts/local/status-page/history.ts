/**
 * The status page's charts over the last 15 minutes. Group sizes exist only as the emulator's state
 * now, so the page samples them into ring buffers; request rates and the functions' metrics are
 * already kept by the emulator's Monitoring store, so they are read from it over the window.
 * Memory stays bounded either way: fixed-size buffers here, a point cap per series in the store.
 */
import { z } from 'zod';
import { metricTypes as scalingAlertsMetrics } from '../../../shared/scaling-alerts/plan';
import type { RunningEmulator } from '../compute-emulator';
import { metrics as agentMetrics } from '../scenarios/topology';

/** A point: [time in ms, value]. */
export const chartPointSchema = z.tuple([z.number().int(), z.number()]);
export const chartSeriesSchema = z.object({
  name: z.string(),
  /** Dashed lines pair with a solid one of the same name stem (running vs target). */
  dashed: z.boolean(),
  points: z.array(chartPointSchema),
});
export const chartSchema = z.object({
  id: z.string(),
  title: z.string(),
  unit: z.string(),
  series: z.array(chartSeriesSchema),
});
/** What `GET /api/history` answers. */
export const historySchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  charts: z.array(chartSchema),
});
export type ChartPoint = z.infer<typeof chartPointSchema>;
export type ChartSeries = z.infer<typeof chartSeriesSchema>;
export type Chart = z.infer<typeof chartSchema>;
export type History = z.infer<typeof historySchema>;

export const defaultWindowMs = 15 * 60_000;

/** A fixed-capacity buffer that drops its oldest entry when full. */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[(this.start + this.count) % this.capacity] = item;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T);
    return out;
  }

  get size(): number {
    return this.count;
  }
}

/** One sample of the groups: target and running sizes per group (the sandbox names groups by role). */
export interface SizeSample {
  at: number;
  groups: { name: string; target: number; running: number }[];
}

/** Pure: the group-size chart of some samples (oldest first) within [from, to]. */
export function sizeChart(samples: readonly SizeSample[], from: number, to: number): Chart {
  const names = [...new Set(samples.flatMap((s) => s.groups.map((g) => g.name)))].sort();
  const inWindow = samples.filter((s) => s.at >= from && s.at <= to);
  const series = names.flatMap((name): ChartSeries[] => {
    const of = (field: 'target' | 'running', dashed: boolean): ChartSeries => ({
      name: `${name} ${field}`,
      dashed,
      points: inWindow.flatMap((s) => {
        const g = s.groups.find((x) => x.name === name);
        return g ? [[s.at, g[field]] as ChartPoint] : [];
      }),
    });
    return [of('target', false), of('running', true)];
  });
  return { id: 'sizes', title: 'Instance groups: target and running size', unit: 'instances', series };
}

/** The subset of a Monitoring time series read here. */
export interface StoredSeries {
  metric: { type: string; labels: Record<string, string> };
  points: { interval: { endTime: string }; value: { doubleValue?: number; int64Value?: string | number } }[];
}

/** How one metric becomes lines of a chart. */
export interface MetricLine {
  type: string;
  /** Legend of a series from its metric labels; series with the same legend are summed. */
  legend: (labels: Record<string, string>) => string;
  /** Points of one series in one bucket: the latest counts (a gauge), or all of them (events). */
  within: 'last' | 'sum';
  bucketMs: number;
}

export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  lines: MetricLine[];
}

const numeric = (p: StoredSeries['points'][number]): number | undefined => {
  const v =
    p.value.doubleValue ?? (p.value.int64Value === undefined ? undefined : Number(p.value.int64Value));
  return v !== undefined && Number.isFinite(v) ? v : undefined;
};

/**
 * Pure: lines of a chart from Monitoring series. Points fall in buckets of `bucketMs`; per series a
 * bucket's value is its last point (or the sum of its points), and series with one legend are summed
 * per bucket (e.g. the request rates of every HAProxy instance). A bucket is drawn at its latest point.
 */
export function metricLines(series: readonly StoredSeries[], line: MetricLine, from: number, to: number) {
  const byLegend = new Map<string, Map<number, { at: number; value: number }>>();
  for (const s of series) {
    if (s.metric.type !== line.type) continue;
    const legend = line.legend(s.metric.labels);
    const buckets = byLegend.get(legend) ?? new Map<number, { at: number; value: number }>();
    byLegend.set(legend, buckets);
    const own = new Map<number, { at: number; value: number }>();
    for (const p of s.points) {
      const at = Date.parse(p.interval.endTime);
      const value = numeric(p);
      if (Number.isNaN(at) || at < from || at > to || value === undefined) continue;
      const b = Math.floor(at / line.bucketMs);
      const prev = own.get(b);
      if (!prev) own.set(b, { at, value });
      else if (line.within === 'sum') own.set(b, { at: Math.max(at, prev.at), value: prev.value + value });
      else if (at > prev.at) own.set(b, { at, value });
    }
    for (const [b, v] of own) {
      const total = buckets.get(b);
      buckets.set(b, total ? { at: Math.max(total.at, v.at), value: total.value + v.value } : v);
    }
  }
  return [...byLegend.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, buckets]): ChartSeries => ({
      name,
      dashed: false,
      points: [...buckets.values()]
        .sort((a, b) => a.at - b.at)
        .map((p): ChartPoint => [p.at, Math.round(p.value * 1000) / 1000]),
    }));
}

const ilb = (name: string) => `custom.googleapis.com/ilb/${name}`;
const last = (path: string) => path.split('/').slice(-1)[0] ?? path;
const fixed = (name: string) => () => name;
const gauge = (type: string, legend: MetricLine['legend']): MetricLine => ({
  type,
  legend,
  within: 'last',
  bucketMs: 5000,
});

/** The charts read from Monitoring: request rates, healthSweep's and scalingAlerts' metrics. */
export const metricCharts: readonly ChartSpec[] = [
  {
    id: 'requests',
    title: 'Request rates (metrics agent, summed over instances)',
    unit: 'req/s',
    lines: [
      gauge(agentMetrics.haproxyRate, fixed('haproxy')),
      gauge(agentMetrics.backendRate, fixed('backends')),
    ],
  },
  {
    id: 'healthy',
    title: 'healthSweep: healthy members per role and zone',
    unit: 'members',
    lines: [gauge(ilb('healthy_members'), (l) => `${l.role ?? '?'} ${l.zone ?? '?'}`)],
  },
  {
    id: 'sweep',
    title: 'healthSweep: stale nodes, orphans, actions, refusals',
    unit: 'per sweep',
    lines: [
      gauge(ilb('stale_nodes'), fixed('stale nodes')),
      gauge(ilb('orphans'), fixed('orphans')),
      gauge(ilb('actions'), (l) => `action ${l.action ?? '?'}`),
      gauge(ilb('refused_actions'), (l) => `refused ${l.reason ?? '?'}`),
    ],
  },
  {
    id: 'sweep-duration',
    title: 'healthSweep: sweep duration',
    unit: 'ms',
    lines: [gauge(ilb('sweep_duration_ms'), fixed('duration'))],
  },
  {
    id: 'scaling-alerts',
    title: 'scalingAlerts: effective floor, active leases, decisions per minute',
    unit: 'count',
    lines: [
      gauge(scalingAlertsMetrics.floor, (l) => `floor ${last(l.autoscaler ?? '?')}`),
      gauge(scalingAlertsMetrics.leases, (l) => `leases ${last(l.autoscaler ?? '?')}`),
      {
        ...gauge(scalingAlertsMetrics.decision, (l) => `${l.decision ?? '?'}/min`),
        within: 'sum',
        bucketMs: 60_000,
      },
    ],
  },
];

/** Reads every series of the specs' metric types from the emulator's Monitoring store. */
function readMonitoring(compute: RunningEmulator, from: number, to: number): StoredSeries[] {
  const types = [...new Set(metricCharts.flatMap((c) => c.lines.map((l) => l.type)))];
  const startTime = new Date(from).toISOString();
  const endTime = new Date(to).toISOString();
  return types.flatMap(
    (type) => compute.monitoring.list({ filter: `metric.type = "${type}"`, startTime, endTime }).timeSeries,
  );
}

export interface HistoryOptions {
  windowMs?: number;
  /** How often group sizes are sampled (default 5 s). */
  sampleMs?: number;
  clock?: () => number;
}

export interface HistoryRecorder {
  history(): History;
  stop(): void;
}

/** Samples group sizes on a timer and answers the charts of the last window. */
export function startHistory(compute: RunningEmulator, options: HistoryOptions = {}): HistoryRecorder {
  const windowMs = options.windowMs ?? defaultWindowMs;
  const sampleMs = options.sampleMs ?? 5000;
  const clock = options.clock ?? Date.now;
  const samples = new RingBuffer<SizeSample>(Math.ceil(windowMs / sampleMs) + 1);
  const sample = () => {
    const emu = compute.emulator;
    samples.push({
      at: clock(),
      groups: emu.allIgms().map((g) => ({
        name: g.name,
        target: g.targetSize,
        running: emu.managedInstances(g).filter((m) => m.instance?.status === 'RUNNING').length,
      })),
    });
  };
  sample();
  const timer = setInterval(sample, sampleMs);
  timer.unref();
  return {
    history() {
      const to = clock();
      const from = to - windowMs;
      const stored = readMonitoring(compute, from, to);
      const charts: Chart[] = [
        sizeChart(samples.toArray(), from, to),
        ...metricCharts.map((spec) => ({
          id: spec.id,
          title: spec.title,
          unit: spec.unit,
          series: spec.lines.flatMap((line) => metricLines(stored, line, from, to)),
        })),
      ];
      // The shape the page draws; legends come from metric labels anyone may write.
      return historySchema.parse({ from, to, charts });
    },
    stop: () => clearInterval(timer),
  };
}
