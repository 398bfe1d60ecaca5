/**
 * scalingAlerts end to end in its own sandbox: the emulator's Monitoring opens an incident on the
 * HAProxy request rate, publishes it to `scaling-alerts`, the function (behind the push bridge, with
 * its own Consul token) leases a higher floor as a one-time scaling schedule, and the group grows;
 * the close removes it; a lost close still ends with the lease, in GCE. Needs `npm run build`.
 * The lease is GCE's shortest schedule (300 s), so alert-lost-close takes 6-8 minutes.
 */
import { createLogger } from '../../shared/logging';
import { runScenario } from '../../infra-scripts/local/scenarios';
import { startSandbox, type Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { randomLoopbackPrefix } from '../harness';

jest.setTimeout(600_000);

let sb: Sandbox;
const report: string[] = [];
const out = (line: string) => void report.push(line);

beforeAll(async () => {
  sb = await startSandbox({
    logger: createLogger({ name: 'alerts-e2e', level: process.env.LOG_LEVEL ?? 'warn' }),
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    stabilizationSec: 30,
    progress: out,
  });
  out(`sandbox up in ${sb.startupMs} ms; functions: ${sb.functions.join(', ')}`);
}, 300_000);

afterAll(async () => {
  await sb?.stop();
  process.stdout.write(`${report.join('\n')}\n`);
});

type Timeline = { t: number; event: string }[];

test('alert-open: an incident on the HAProxy rate leases a higher floor; the haproxy group grows', async () => {
  expect(sb.functions).toContain('scalingAlerts');
  const o = (await runScenario(sb, 'alert-open', out)) as {
    floor: number | null;
    before: number;
    after: number;
    incidents: string[];
    timeline: Timeline;
  };
  expect(o.incidents.length).toBeGreaterThan(0);
  expect(o.floor).toBe(4);
  expect(o.after).toBeGreaterThan(o.before);
  const decisions = sb.actions.filter((a) => a.function === 'scalingAlerts').map((a) => a.decision);
  expect(decisions).toContain('applied');
});

test('alert-close: the incident closes, the schedule is removed, the floor returns', async () => {
  const o = (await runScenario(sb, 'alert-close', out)) as {
    closed: boolean;
    schedulesRemoved: boolean;
    timeline: Timeline;
  };
  expect(o.closed).toBe(true);
  expect(o.schedulesRemoved).toBe(true);
});

test('alert-lost-close: the closed notification is lost; the lease ends on its own', async () => {
  const o = (await runScenario(sb, 'alert-lost-close', out)) as {
    opened: boolean;
    dropped: number;
    expired: boolean;
    floorAfter: number;
  };
  expect(o.opened).toBe(true);
  expect(o.dropped).toBeGreaterThan(0);
  expect(o.expired).toBe(true);
  expect(o.floorAfter).toBe(2);
});
