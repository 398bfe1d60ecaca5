/**
 * healthSweep in the sandbox: Cloud Scheduler's ticks through the Pub/Sub emulator and the push
 * bridge, its metrics in the emulator's Monitoring store, healthSweepHttp's dry run, and the
 * `stale-node` and `partition` scenarios. Needs `npx tsc -p tsconfig.build.json` (the functions and
 * the instances run from dist/) and the tools from install-tools.sh.
 */
import { createLogger } from '../../shared/logging';
import { runScenario } from '../../infra-scripts/local/scenarios';
import { startSandbox, type Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { dryRunReport, sweepsSince } from '../../infra-scripts/local/scenarios/sweep-scenarios';
import { sandboxSweepThresholds, sandboxZones } from '../../infra-scripts/local/scenarios/topology';
import { randomLoopbackPrefix } from '../harness';

jest.setTimeout(240_000);

// Faster than the sandbox's 15 s so the file stays short; the sweep does not depend on the period.
const sweepIntervalMs = 5000;
let sb: Sandbox;
const report: string[] = [];
const out = (line: string) => void report.push(line);

beforeAll(async () => {
  sb = await startSandbox({
    logger: createLogger({ name: 'sweep-e2e', level: process.env.LOG_LEVEL ?? 'warn' }),
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    sweepIntervalMs,
    progress: out,
  });
  out(`sandbox up in ${sb.startupMs} ms`);
}, 300_000);

afterAll(async () => {
  await sb?.stop();
  process.stdout.write(`${report.join('\n')}\n`);
});

const waitFor = async <T>(ms: number, check: () => T | undefined): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
};

test('sweeps run on the schedule and write their metrics into the Monitoring emulator', async () => {
  expect(sb.functions).toEqual(expect.arrayContaining(['healthSweep', 'healthSweepHttp']));
  const from = Date.now();
  const sweeps = await waitFor(4 * sweepIntervalMs + 20_000, () => {
    const s = sweepsSince(sb, from);
    return s.length >= 3 ? s : undefined;
  });
  const gaps = sweeps.slice(1).map((s, i) => Date.parse(s.time) - Date.parse(sweeps[i]!.time));
  for (const gap of gaps) expect(gap).toBeLessThan(2 * sweepIntervalMs + 5000);
  // A healthy sandbox: complete reads, no zone partitioned, nothing stale.
  const last = sweeps[sweeps.length - 1]!;
  expect(last.reportOnly).toEqual([]);
  expect(last.zones?.map((z) => [z.zone, z.partitioned])).toEqual(sandboxZones.map((z) => [z, false]));
  expect(last.stale).toBe(0);

  const list = (metric: string) =>
    sb.compute.monitoring.list({
      filter: `metric.type = "custom.googleapis.com/ilb/${metric}"`,
      startTime: new Date(from).toISOString(),
      endTime: new Date(Date.now() + 1000).toISOString(),
    }).timeSeries;
  const durations = list('sweep_duration_ms');
  expect(durations).toHaveLength(1);
  expect(durations[0]!.resource).toEqual({ type: 'global', labels: { project_id: sb.project } });
  expect(durations[0]!.points.length).toBeGreaterThanOrEqual(3);
  const healthy = list('healthy_members').map((s) => ({ ...s.metric.labels, value: s.points[0]!.value }));
  expect(healthy).toEqual(
    expect.arrayContaining(
      sandboxZones.map((zone) => ({ role: 'backend', zone, value: { doubleValue: 1 } })),
    ),
  );
  expect(list('stale_nodes')[0]!.points[0]!.value).toEqual({ doubleValue: 0 });
});

test('healthSweepHttp refuses a request without a bearer token and answers a dry run with one', async () => {
  const anonymous = await fetch(`${sb.sweepHttpUrl}?dryRun=true`);
  expect(anonymous.status).toBe(401);
  await anonymous.text();
  const dry = await dryRunReport(sb);
  expect(dry.status).toBe('completed');
  expect(dry.dryRun).toBe(true);
  expect(dry.report?.reportOnly).toEqual([]);
  expect(dry.report?.stale).toEqual([]);
  // The same report through the scenario runner the status page and `npm run scenario` reach.
  const outcome = await runScenario(sb, 'sweep-report', out);
  expect(outcome).toMatchObject({ status: 'completed', reportOnly: [], stale: 0, refused: [] });
});

test('stale-node: a node whose instance vanished without an event is removed within N sweeps, no live node ever', async () => {
  const from = Date.now();
  const outcome = await runScenario(sb, 'stale-node', out);
  expect(outcome.removed).toBe(true);
  // The sweep that removed it says so in its metrics (written just after its actions).
  const deregistered = await waitFor(10_000, () => {
    const series = sb.compute.monitoring.list({
      filter: 'metric.type = "custom.googleapis.com/ilb/actions" AND metric.labels.action = "deregister"',
      startTime: new Date(from).toISOString(),
      endTime: new Date(Date.now() + 1000).toISOString(),
    }).timeSeries;
    const values = series.flatMap((x) => x.points.map((p) => p.value.doubleValue));
    return values.includes(1) ? values : undefined;
  });
  expect(deregistered).toContain(1);
  // The first sweep counted may have started before the node was registered.
  expect(outcome.sweepsUntilRemoved).toBeLessThanOrEqual(sandboxSweepThresholds.absentSweeps + 1);
  expect(outcome.liveNodesLost).toEqual([]);
});

test('partition: failing Consul reads and a dead-looking zone delete and recreate nothing; healed, the catalog is whole', async () => {
  const outcome = await runScenario(sb, 'partition', out);
  expect(outcome.readsFail).toEqual({ reportOnlySweeps: 2, keptWhileBlind: true, removedAfterHeal: true });
  expect(outcome.zoneDead).toMatchObject({
    zone: sandboxZones[1],
    partitionedSeen: true,
    refusedSeen: true,
    refused: expect.arrayContaining([{ type: 'deregister', reason: 'zone-partitioned' }]),
    dryRunPartitioned: true,
    phantomKept: true,
    recreated: [],
  });
  expect(outcome.catalogWhole).toBe(true);
  expect(outcome.instancesReplaced).toEqual([]);
});
