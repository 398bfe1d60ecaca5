/**
 * The status page against the Compute emulator (and its Monitoring store) and a real Consul agent:
 * the charts' series over the last 15 minutes as JSON, scalingAlerts' leases from KV with the
 * autoscalers' scaling schedules, and a headless chromium drawing both (test-artifacts/status-charts.png).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import {
  historySchema,
  metricLines,
  RingBuffer,
  sizeChart,
  type Chart,
  type StoredSeries,
  type History,
} from '../../infra-scripts/local/status-page/history';
import { scheduleEnd } from '../../infra-scripts/local/status-page/leases';
import { startStatusPage, type StatusPage } from '../../infra-scripts/local/status-page/server';
import { defaultKvPrefix } from '../../shared/contract';
import { createGcpClients } from '../../shared/gcp/client';
import { createMetricsWriter } from '../../shared/gcp/monitoring';
import { createLogger } from '../../shared/logging';
import { metricTypes } from '../../shared/scaling-alerts/plan';
import { leaseSchedule } from '../../shared/scaling-alerts/schedule';
import { stateKey, type AutoscalerState, type Lease } from '../../shared/scaling-alerts/state';
import { randomLoopbackPrefix, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { clients, project, startTestEmulator, zones } from './compute-emulator-helpers';

jest.setTimeout(180_000);

const zone = zones[0]!;
const artifacts = path.join(__dirname, '../../test-artifacts');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haproxyRate = 'custom.googleapis.com/ilb/haproxy/request_rate';
const now = Date.now();

let emu: RunningEmulator;
let cluster: ConsulCluster;
let status: StatusPage;
let c: ReturnType<typeof clients>;

const lease: Lease = {
  incidentId: '0.lw3k2a_1',
  rule: '<img src=x onerror="document.title=1">',
  tier: 'haproxy',
  change: { type: 'raise-min', by: 2 },
  grantedAt: now - 120_000,
  expiresAt: now + 480_000,
  generation: 0,
};
const scheduleName = 'ilb-lease-0-lw3k2a-1';

beforeAll(async () => {
  const logger = createLogger({ name: 'status-page-test', level: process.env.LOG_LEVEL ?? 'warn' });
  [{ emu }, cluster] = await Promise.all([
    startTestEmulator(),
    startConsulCluster({ servers: 1, prefix: randomLoopbackPrefix() }),
  ]);
  c = clients(emu.port);
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'haproxy',
      baseInstanceName: 'haproxy',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 2,
    },
  });
  await c.autoscalers.insert({
    project,
    zone,
    autoscalerResource: {
      name: 'haproxy-autoscaler',
      target: `projects/${project}/zones/${zone}/instanceGroupManagers/haproxy`,
      autoscalingPolicy: {
        minNumReplicas: 2,
        maxNumReplicas: 4,
        mode: 'OFF',
        scalingSchedules: { [scheduleName]: leaseSchedule(lease, 4) },
      },
    },
  });
  status = await startStatusPage({
    port: 0,
    compute: emu,
    consul: cluster,
    actions: [],
    bridge: { stats: () => [] },
    logger,
    links: () => ({}),
    history: { sampleMs: 250 },
  });
});

afterAll(async () => {
  await status?.stop();
  await c?.close();
  await emu?.stop();
  await cluster?.stop();
});

const at = (ms: number) => new Date(ms).toISOString();

/** Two HAProxies' request rates, one point a minute over the last ten minutes, as the metrics agent writes them. */
function writeRequestRates() {
  for (let m = 10; m >= 1; m--) {
    emu.monitoring.create({
      timeSeries: ['1001', '1002'].map((id, i) => ({
        metric: { type: haproxyRate },
        resource: { type: 'gce_instance', labels: { instance_id: id, zone, project_id: project } },
        points: [{ interval: { endTime: at(now - m * 60_000) }, value: { doubleValue: (10 - m) * (i + 1) } }],
      })),
    });
  }
}

async function history(): Promise<History> {
  const res = await fetch(`${status.url}api/history`);
  expect(res.status).toBe(200);
  return historySchema.parse(await res.json());
}

const chart = (h: History, id: string): Chart => {
  const found = h.charts.find((x) => x.id === id);
  if (!found) throw new Error(`no chart ${id}`);
  return found;
};
const series = (h: History, id: string, name: string) => chart(h, id).series.find((s) => s.name === name);

test('before any metric is written, the metric charts are empty and the sizes are sampled', async () => {
  const h = await history();
  expect(h.to - h.from).toBe(15 * 60_000);
  expect(chart(h, 'requests').series).toEqual([]);
  expect(chart(h, 'healthy').series).toEqual([]);
  const target = await waitFor('sampled sizes', async () => {
    const s = series(await history(), 'sizes', 'haproxy target');
    return s && s.points.length >= 2 ? s : undefined;
  });
  expect(target.points.every(([t, v]) => v === 2 && t >= h.from)).toBe(true);
});

test('the series: request rates summed over instances, the functions metrics from Monitoring, sizes sampled', async () => {
  writeRequestRates();
  // healthSweep's and scalingAlerts' points through the real Monitoring client, as the functions write them.
  const gcp = createGcpClients({ apiEndpoint: '127.0.0.1', port: emu.port, protocol: 'http' });
  const port = createMetricsWriter(gcp);
  try {
    for (const [ago, healthy] of [
      [90_000, 1],
      [45_000, 2],
    ] as const) {
      await port.write(
        project,
        [
          {
            type: 'custom.googleapis.com/ilb/healthy_members',
            labels: { role: 'haproxy', zone },
            value: healthy,
          },
          { type: 'custom.googleapis.com/ilb/stale_nodes', labels: {}, value: 2 - healthy },
          {
            type: 'custom.googleapis.com/ilb/refused_actions',
            labels: { reason: 'zone-partitioned' },
            value: 1,
          },
          { type: 'custom.googleapis.com/ilb/sweep_duration_ms', labels: {}, value: 40 * healthy },
          {
            type: metricTypes.floor,
            labels: {
              autoscaler: `projects/${project}/zones/${zone}/autoscalers/haproxy-autoscaler`,
              tier: 'haproxy',
            },
            value: 2 + healthy,
          },
        ],
        now - ago,
      );
    }
    // Written an hour ago: outside the window, never drawn.
    emu.monitoring.create({
      timeSeries: [
        {
          metric: { type: 'custom.googleapis.com/ilb/orphans' },
          resource: { type: 'global', labels: { project_id: project } },
          points: [{ interval: { endTime: at(now - 3600_000) }, value: { doubleValue: 7 } }],
        },
      ],
    });
  } finally {
    await gcp.close();
  }

  const h = await history();
  const haproxy = series(h, 'requests', 'haproxy');
  expect(haproxy?.points).toHaveLength(10);
  // Per minute the two instances' rates add up: (10 - m) * 1 + (10 - m) * 2.
  expect(haproxy?.points.map(([, v]) => v)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
  expect(haproxy?.points[0]?.[0]).toBe(Date.parse(at(now - 600_000)));
  expect(series(h, 'healthy', `haproxy ${zone}`)?.points.map(([, v]) => v)).toEqual([1, 2]);
  expect(series(h, 'sweep', 'stale nodes')?.points.map(([, v]) => v)).toEqual([1, 0]);
  expect(series(h, 'sweep', 'refused zone-partitioned')?.points).toHaveLength(2);
  expect(series(h, 'sweep', 'orphans')).toBeUndefined();
  expect(series(h, 'sweep-duration', 'duration')?.points.map(([, v]) => v)).toEqual([40, 80]);
  expect(series(h, 'scaling-alerts', 'floor haproxy-autoscaler')?.points.map(([, v]) => v)).toEqual([3, 4]);
  const running = series(h, 'sizes', 'haproxy running');
  expect(running?.dashed).toBe(true);
  expect(running?.points.length).toBeGreaterThan(0);
});

test('leases: KV records parsed with the function schema, invalid ones named, and the scaling schedules with their end', async () => {
  const kv = cluster.servers[0]!.consul.kv;
  const state: AutoscalerState = {
    leases: { [lease.incidentId]: lease },
    closed: {},
    original: {},
    changes: [now],
  };
  const key = stateKey(defaultKvPrefix, { project, zone, name: 'haproxy-autoscaler' });
  await kv.set(key, JSON.stringify(state));
  await kv.set(
    `${defaultKvPrefix}scaling-alerts/autoscalers/projects/${project}/zones/${zone}/autoscalers/bogus`,
    '{"leases": 3}',
  );

  const res = await fetch(`${status.url}api/state`);
  const body = (await res.json()) as {
    leases: {
      leases: { autoscaler: string; incidentId: string; rule: string; change: string; expiresAt: number }[];
      invalid: string[];
      schedules: {
        name: string;
        minRequiredReplicas: number;
        durationSec: number;
        state: string;
        end: number;
      }[];
    };
  };
  expect(body.leases.leases).toEqual([
    expect.objectContaining({
      autoscaler: `projects/${project}/zones/${zone}/autoscalers/haproxy-autoscaler`,
      incidentId: lease.incidentId,
      rule: lease.rule,
      change: 'raise floor by 2',
      expiresAt: lease.expiresAt,
    }),
  ]);
  expect(body.leases.invalid).toEqual([`projects/${project}/zones/${zone}/autoscalers/bogus`]);
  const schedule = leaseSchedule(lease, 4);
  const start = Math.floor(lease.grantedAt / 60_000) * 60_000;
  expect(body.leases.schedules).toEqual([
    {
      autoscaler: 'haproxy-autoscaler',
      name: scheduleName,
      minRequiredReplicas: 4,
      durationSec: schedule.durationSec,
      state: expect.stringMatching(/^(ACTIVE|unknown)$/),
      end: start + schedule.durationSec! * 1000,
    },
  ]);
});

test('headless chromium draws the charts and lists the leases, escaped', async () => {
  await mkdir(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(status.url, { timeout: 15_000 });
    await page.waitForSelector('[data-chart="requests"] path.series', { state: 'attached', timeout: 15_000 });
    await page.waitForSelector('#lease-list', { timeout: 15_000 });
    for (const id of ['sizes', 'requests', 'healthy', 'sweep', 'sweep-duration', 'scaling-alerts']) {
      const d = await page.locator(`[data-chart="${id}"] path.series`).first().getAttribute('d');
      expect(d).toMatch(/^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)*$/);
    }
    expect(await page.locator('[data-chart="requests"] .legend').textContent()).toContain('haproxy 27');
    expect(await page.locator('[data-chart="sizes"] svg text').allTextContents()).toContain(
      'time (last 15 min)',
    );
    const leases = page.locator('#lease-list');
    expect(await leases.textContent()).toContain(lease.rule);
    expect(await leases.textContent()).toContain('raise floor by 2');
    expect(await leases.locator('img').count()).toBe(0);
    expect(await page.title()).not.toBe('1');
    expect(await page.locator('#schedule-list').textContent()).toContain(scheduleName);
    await page.screenshot({ path: path.join(artifacts, 'status-charts.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

test('a chart without points says "no data yet" and draws no line', async () => {
  const h = await history();
  // The page as it is, but with the request rates' series gone, as before the first metrics agent tick.
  const empty = { ...h, charts: h.charts.map((x) => (x.id === 'requests' ? { ...x, series: [] } : x)) };
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.route('**/api/history', (route) => route.fulfill({ json: empty }));
    await page.goto(status.url, { timeout: 15_000 });
    await page.waitForSelector('[data-chart="requests"] text.empty', { timeout: 15_000 });
    expect(await page.locator('[data-chart="requests"] text.empty').textContent()).toBe('no data yet');
    expect(await page.locator('[data-chart="requests"] path.series').count()).toBe(0);
    expect(await page.locator('[data-chart="healthy"] path.series').count()).toBe(1);
    expect(await page.locator('[data-chart="healthy"] text.empty').count()).toBe(0);
  } finally {
    await browser.close();
  }
});

describe('the pure parts', () => {
  test('a ring buffer keeps the newest entries up to its capacity, oldest first', () => {
    const ring = new RingBuffer<number>(3);
    for (let i = 1; i <= 7; i++) ring.push(i);
    expect(ring.size).toBe(3);
    expect(ring.toArray()).toEqual([5, 6, 7]);
  });

  test('sizes outside the window are left out; a group that came later has only its own samples', () => {
    const c = sizeChart(
      [
        { at: 100, groups: [{ name: 'a', target: 1, running: 0 }] },
        { at: 200, groups: [{ name: 'a', target: 2, running: 1 }] },
        {
          at: 300,
          groups: [
            { name: 'a', target: 2, running: 2 },
            { name: 'b', target: 1, running: 1 },
          ],
        },
      ],
      150,
      300,
    );
    expect(c.series.map((x) => [x.name, x.dashed, x.points])).toEqual([
      [
        'a target',
        false,
        [
          [200, 2],
          [300, 2],
        ],
      ],
      [
        'a running',
        true,
        [
          [200, 1],
          [300, 2],
        ],
      ],
      ['b target', false, [[300, 1]]],
      ['b running', true, [[300, 1]]],
    ]);
  });

  test('decisions are counted per minute; gauges keep the last point of a bucket; bool points are skipped', () => {
    const t = (ms: number) => ({ endTime: new Date(ms).toISOString() });
    const stored: StoredSeries[] = [
      {
        metric: { type: 'd', labels: { decision: 'applied', autoscaler: 'x' } },
        points: [60_000, 70_000, 130_000].map((ms) => ({ interval: t(ms), value: { doubleValue: 1 } })),
      },
      {
        metric: { type: 'd', labels: { decision: 'applied', autoscaler: 'y' } },
        points: [{ interval: t(65_000), value: { doubleValue: 1 } }],
      },
      {
        metric: { type: 'g', labels: {} },
        points: [
          { interval: t(1_000), value: { doubleValue: 3 } },
          { interval: t(4_000), value: { int64Value: '5' } },
          { interval: t(6_000), value: {} },
        ],
      },
    ];
    const legend = (l: Record<string, string>) => l.decision ?? 'g';
    expect(metricLines(stored, { type: 'd', legend, within: 'sum', bucketMs: 60_000 }, 0, 200_000)).toEqual([
      {
        name: 'applied',
        dashed: false,
        points: [
          [70_000, 3],
          [130_000, 1],
        ],
      },
    ]);
    expect(metricLines(stored, { type: 'g', legend, within: 'last', bucketMs: 5000 }, 0, 200_000)).toEqual([
      { name: 'g', dashed: false, points: [[4_000, 5]] },
    ]);
  });

  test('a recurring schedule ends only while active; one in another time zone is read there', () => {
    const nine = Date.UTC(2026, 10, 27, 9, 0);
    const daily = { schedule: '0 9 * * *', durationSec: 600, timeZone: 'UTC' };
    expect(scheduleEnd(daily, nine + 60_000)).toBe(nine + 600_000);
    expect(scheduleEnd(daily, nine + 700_000)).toBeNull();
    expect(scheduleEnd({ ...daily, timeZone: 'Europe/Paris' }, nine - 3600_000 + 60_000)).toBe(
      nine - 3600_000 + 600_000,
    );
    expect(scheduleEnd({ schedule: 'not cron', durationSec: 600 }, nine)).toBeNull();
  });
});
