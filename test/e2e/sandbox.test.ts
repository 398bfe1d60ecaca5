/**
 * The whole sandbox (`npm start`'s system) driven through every scenario, asserting membership,
 * routing, the Consul catalog and autoscaler state; a headless chromium (Debian's, via
 * playwright-core) loads the frontend and status pages and saves screenshots to test-artifacts/.
 * Needs `npm run build` (instances run the apps from dist/) and the tools from install-tools.sh.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { googleAuthLibrary } from 'google-gax';
import { chromium } from 'playwright-core';
import { RegionAutoscalersClient } from '@google-cloud/compute/build/src/v1/region_autoscalers_client';
import { nodeMetaKeys } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import { runScenario } from '../../infra-scripts/local/scenarios';
import { startSandbox, type Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { sandboxRegion } from '../../infra-scripts/local/scenarios/topology';
import { randomLoopbackPrefix } from '../harness';

jest.setTimeout(300_000);

const artifacts = path.join(__dirname, '../../test-artifacts');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let sb: Sandbox;
const report: string[] = [];
const out = (line: string) => void report.push(line);

beforeAll(async () => {
  sb = await startSandbox({
    logger: createLogger({ name: 'sandbox-e2e', level: process.env.LOG_LEVEL ?? 'warn' }),
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    stabilizationSec: 30,
    progress: out,
    // Every scenario meets what real delivery does: duplicates, a `last` before its `first`, delay.
    auditFaults: { duplicate: 0.3, reorder: 0.5, delayMs: 400, seed: 20261127 },
  });
  sb.status.setScenarioRunner(async (name, write) => void (await runScenario(sb, name, write)));
  out(`sandbox up in ${sb.startupMs} ms`);
}, 300_000);

afterAll(async () => {
  await sb?.stop();
  process.stdout.write(`${report.join('\n')}\n`);
});

interface FrontendAnswer {
  ok: boolean;
  /** The public page names the backend and its zone, never its instance id or address. */
  backend?: { name: string; zone: string; id?: string };
  haproxy?: { node?: string };
}

async function frontend(): Promise<FrontendAnswer> {
  const res = await fetch(`${sb.frontendUrl()}?format=json`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as FrontendAnswer;
}

interface State {
  compute: {
    groups: {
      name: string;
      targetSize: number;
      managedInstances: { name: string; id: string; zone: string; instanceStatus: string }[];
    }[];
  };
  consul: {
    leader: string;
    nodes: { name: string; meta: Record<string, string>; checks: { status: string }[] }[];
  };
}
async function state(): Promise<State> {
  return (await (await fetch(`${sb.statusUrl}api/state`)).json()) as State;
}

test('the frontend answers through HAProxy from a backend of the backend MIG; every instance is a healthy Consul node', async () => {
  const answer = await frontend();
  expect(answer.ok).toBe(true);
  const s = await state();
  expect(s.compute.groups.map((g) => g.name).sort()).toEqual(['backend', 'frontend', 'haproxy']);
  const backends = s.compute.groups.find((g) => g.name === 'backend')!.managedInstances;
  expect(backends.map((m) => m.name)).toContain(answer.backend?.name);
  expect(backends.find((m) => m.name === answer.backend?.name)?.zone).toBe(answer.backend?.zone);
  expect(answer.backend?.id).toBeUndefined();
  expect(s.compute.groups.find((g) => g.name === 'haproxy')!.managedInstances.map((m) => m.name)).toContain(
    answer.haproxy?.node,
  );
  for (const m of s.compute.groups.flatMap((g) => g.managedInstances)) {
    const node = s.consul.nodes.find((n) => n.name === m.name);
    expect(node?.meta[nodeMetaKeys.instanceId]).toBe(m.id);
    expect(node?.checks.every((c) => c.status === 'passing')).toBe(true);
  }
});

test('headless chromium renders the frontend and the status page', async () => {
  await mkdir(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(sb.frontendUrl()!, { timeout: 15_000 });
    await page.screenshot({ path: path.join(artifacts, 'frontend.png') });
    expect(await page.textContent('body')).toMatch(/backend-[a-z0-9]{4}/);
    await page.goto(sb.statusUrl, { timeout: 15_000 });
    await page.waitForSelector('#tiers .card', { timeout: 15_000 });
    expect(await page.locator('#tiers .card').count()).toBe(3);
    expect(await page.textContent('#tiers')).toContain('backend-autoscaler');
    // The charts of the last 15 minutes: sampled group sizes and the metrics agent's request rates.
    await page.waitForSelector('[data-chart="sizes"] path.series', { state: 'attached', timeout: 15_000 });
    await page.waitForSelector('[data-chart="requests"] path.series', { state: 'attached', timeout: 30_000 });
    await page.screenshot({ path: path.join(artifacts, 'status.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

test('preempt: the orchestrator removes the stale node, the MIG recreates the name with a new id', async () => {
  const o = await runScenario(sb, 'preempt', out);
  expect(o.staleRemoved).toBe(true);
  expect(o.newId).toEqual(expect.stringMatching(/^\d+$/));
  expect(o.newId).not.toBe(o.oldId);
});

test("recreate-same-name: the new instance stays registered through the old one's delete events", async () => {
  const o = await runScenario(sb, 'recreate-same-name', out);
  expect(o.newId).toEqual(expect.stringMatching(/^\d+$/));
  expect(o.stillRegistered).toBe(true);
});

/** Runs a scenario the way `npm run scenario` does: POST to the status page, report streamed back. */
async function viaStatusPage(name: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${sb.statusUrl}api/scenarios/${name}`, { method: 'POST' });
  expect(res.status).toBe(200);
  const text = await res.text();
  report.push(text);
  const done = new RegExp(`^== ${name} done in \\d+ s: (.*)$`, 'm').exec(text);
  expect(done).not.toBeNull();
  return JSON.parse(done![1]!) as Record<string, unknown>;
}

test('kill-backend (through the status page, as the CLI runs it): Consul sees the failure, traffic is routed around it, and it comes back', async () => {
  const o = await viaStatusPage('kill-backend');
  expect(o.sawCritical).toBe(true);
  expect(o.recovered).toBe(true);
  expect(Number(o.failed)).toBeLessThanOrEqual(Number(o.ok) * 0.05);
  expect((await frontend()).ok).toBe(true);
});

test('load: the backend autoscaler scales out on HAProxy request rates, as its policy says', async () => {
  const o = await runScenario(sb, 'load', out);
  expect(Number(o.after)).toBeGreaterThan(Number(o.before));
  expect(Number(o.passing)).toBeGreaterThanOrEqual(Number(o.after));
  const client = new RegionAutoscalersClient({
    apiEndpoint: '127.0.0.1',
    port: sb.compute.port,
    protocol: 'http',
    authClient: new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    }),
  });
  try {
    const [as] = await client.get({
      project: sb.project,
      region: sandboxRegion,
      autoscaler: 'backend-autoscaler',
    });
    expect(as.autoscalingPolicy?.maxNumReplicas).toBeGreaterThanOrEqual(Number(o.after));
  } finally {
    await client.close();
  }
});

test('scale-in: without load the group returns to its minimum, its leavers drained by their shutdown script', async () => {
  const o = await runScenario(sb, 'scale-in', out);
  expect(o.after).toBe(2);
  expect(o.passing).toBe(2);
  const s = await state();
  const names = s.compute.groups.find((g) => g.name === 'backend')!.managedInstances.map((m) => m.name);
  const catalog = s.consul.nodes.filter((n) => n.meta[nodeMetaKeys.role] === 'backend').map((n) => n.name);
  expect(catalog.sort()).toEqual(names.sort());
});

test('lose-consul-server: a new leader is elected, the frontend keeps serving, the restarted server rejoins', async () => {
  const o = await runScenario(sb, 'lose-consul-server', out);
  expect(o.newLeader).toEqual(expect.stringMatching(/^consul-server-\d$/));
  expect(o.newLeader).not.toBe(o.stopped);
  expect(o.serving).toBe(true);
  expect(o.rejoined).toBe(true);
});
