/**
 * The deploy's dashboard and heartbeat alert: the dashboard JSON against the dashboards API shape,
 * every custom metric it charts against the code that writes it, and the heartbeat alert's absence
 * window against Monitoring's limits and the scheduler's interval.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { chartedMetrics, dashboardConfig, googleMetrics } from '../../infra-scripts/deploy/dashboard';
import { dashboardSchema, filterTerms } from '../../infra-scripts/deploy/dashboard-schema';
import { absenceSec, heartbeatPolicy, scheduleIntervalSec } from '../../infra-scripts/deploy/heartbeat';
import { metricCharts } from '../../infra-scripts/local/status-page/history';
import { metrics as sandboxAgentMetrics } from '../../infra-scripts/local/scenarios/topology';
import { customMetric } from '../../shared/gcp/monitoring';

const root = path.resolve(__dirname, '../..');
const config = (extra: Record<string, unknown> = {}) => resolveConfig({ project: 'demo-project', ...extra });

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const full = path.join(dir, e);
    if (statSync(full).isDirectory()) return e === 'node_modules' ? [] : sources(full);
    return e.endsWith('.ts') ? [full] : [];
  });
}

/**
 * Metrics agreed in the issue-19/18 split (brief metrics.md) whose writers land on other branches:
 * the dashboard charts them already; each must be written once merged (then this list empties).
 */
const writtenOnOtherBranches: Record<string, string> = {
  function_heartbeat: 'B2: every function after a completed run',
  sweep_repaired_without_event: 'B2: healthSweep',
  instance_creation_errors: "E2: scalingAlerts' lease pass",
  'scaling_alerts/unreachable_floor': 'E2: scalingAlerts',
  routing_skipped: 'D: haproxy-sync',
  identity_refused: 'D: healthSweep',
  events_refused: 'E1: instanceEvents',
};

describe('dashboard', () => {
  const dashboard = dashboardConfig(config());
  const filters = dashboard.mosaicLayout.tiles.flatMap((t) =>
    t.widget.xyChart.dataSets.map((d) => d.timeSeriesQuery.timeSeriesFilter.filter),
  );
  const chartedTypes = filters.map((f) =>
    JSON.parse(filterTerms(f)!.find((t) => t.field === 'metric.type')!.value),
  );

  it('has the shape of the dashboards API', () => {
    const parsed = dashboardSchema.safeParse(dashboard);
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('refuses what the API refuses (the schema is not a pass-through)', () => {
    const tile = dashboard.mosaicLayout.tiles[0]!;
    const bad = (mutate: (d: typeof dashboard) => void) => {
      const copy = structuredClone(dashboard);
      mutate(copy);
      return dashboardSchema.safeParse(copy).success;
    };
    expect(bad((d) => (d.mosaicLayout.columns = 49))).toBe(false);
    expect(bad((d) => (d.mosaicLayout.tiles[0] = { ...tile, xPos: 10 }))).toBe(false);
    expect(
      bad(
        (d) =>
          (d.mosaicLayout.tiles[0]!.widget.xyChart.dataSets[0]!.timeSeriesQuery.timeSeriesFilter.filter =
            'cpu > 1'),
      ),
    ).toBe(false);
    expect(
      bad((d) => {
        d.mosaicLayout.tiles[0]!.widget.xyChart.dataSets[0]!.timeSeriesQuery.timeSeriesFilter.aggregation.perSeriesAligner =
          'ALIGN_NONE';
      }),
    ).toBe(false);
    expect(bad((d) => Object.assign(d, { gridLayout: {} }))).toBe(false);
  });

  it('charts every series of the brief: members, stale, sweep, events, floors, dead letters, heartbeats, creation errors', () => {
    for (const type of [...Object.values(chartedMetrics), ...Object.values(googleMetrics)]) {
      expect(chartedTypes).toContain(type);
    }
    expect(filters.join('\n')).toContain(
      'one_of("instance-events-dead-letter-hold","health-sweep-dead-letter-hold","scaling-alerts-dead-letter-hold")',
    );
    expect(filters.join('\n')).toContain(
      'one_of("instanceevents","healthsweep","scalingalerts","healthsweephttp")',
    );
  });

  it('charts only custom metrics the code writes (or that are agreed and written on another branch)', () => {
    const code = ['shared', 'functions', 'services']
      .flatMap((d) => sources(path.join(root, d)))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const prefix = customMetric('');
    const missing = chartedTypes
      .filter((t) => t.startsWith(prefix))
      .map((t) => t.slice(prefix.length))
      .filter((name) => !code.includes(`customMetric('${name}')`))
      .filter((name) => !(name in writtenOnOtherBranches));
    expect(missing).toEqual([]);
  });

  it("charts every orchestrator series of the sandbox's status page", () => {
    // The request rates are the sandbox metrics agent's own (production autoscales on CPU).
    const agent: string[] = Object.values(sandboxAgentMetrics);
    const page = metricCharts
      .flatMap((chart) => chart.lines.map((l) => l.type))
      .filter((t) => !agent.includes(t));
    expect(page.length).toBeGreaterThan(5);
    for (const type of page) expect(chartedTypes).toContain(type);
  });

  it('charts no function or dead letter without functions', () => {
    const d = dashboardConfig(config({ functions: [] }));
    expect(dashboardSchema.safeParse(d).success).toBe(true);
    expect(JSON.stringify(d)).not.toContain('one_of(');
  });
});

describe('heartbeat alert', () => {
  it('reads the interval of the schedules the deploy accepts', () => {
    expect(scheduleIntervalSec('*/5 * * * *')).toBe(300);
    expect(scheduleIntervalSec('* * * * *')).toBe(60);
    expect(scheduleIntervalSec('0,20,30 * * * *')).toBe(30 * 60);
    expect(scheduleIntervalSec('15 */2 * * *')).toBe(7200);
    expect(scheduleIntervalSec('15 * * * *')).toBe(3600);
    expect(scheduleIntervalSec('0 3 * * *')).toBe(86_400);
    expect(scheduleIntervalSec('0 3 * * 1')).toBeUndefined();
    expect(scheduleIntervalSec('*/5 9-17 * * *')).toBeUndefined();
    expect(() => config({ healthSweepSchedule: '0 3 * * 1-5' })).toThrow(/healthSweepSchedule/);
  });

  it('keeps the absence within Monitoring limits: at least 120 s, whole minutes', () => {
    expect(absenceSec(60, 1)).toBe(120);
    expect(absenceSec(300, 3)).toBe(900);
    expect(absenceSec(90, 3)).toBe(300);
    expect(absenceSec(86_400, 3)).toBe(86_400);
  });

  it('is absent on healthSweep heartbeats for N scheduler intervals, notifying the operator channels', () => {
    const channel = 'projects/demo-project/notificationChannels/123';
    const policy = heartbeatPolicy(
      config({
        healthSweepSchedule: '*/2 * * * *',
        alerting: { sweepMissedIntervals: 4, notificationChannels: [channel] },
      }),
    );
    const absent = policy.conditions[0]!.conditionAbsent;
    expect(absent.duration).toBe('480s');
    expect(filterTerms(absent.filter.replace(/ AND /g, ' '))).toEqual([
      { field: 'metric.type', op: '=', value: `"${customMetric('function_heartbeat')}"` },
      { field: 'resource.type', op: '=', value: '"global"' },
      { field: 'metric.label."function"', op: '=', value: '"healthSweep"' },
    ]);
    expect(policy.notificationChannels).toEqual([channel]);
    expect(heartbeatPolicy(config()).conditions[0]!.conditionAbsent.duration).toBe('900s');
  });
});
