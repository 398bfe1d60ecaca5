/**
 * The deploy and teardown plans of fixed configurations, against files committed next to this
 * test: the dry run's output (every step, check and command in order) and what it does not print
 * (each check's expectation, the lookups, scripts fed on stdin). A change to a plan shows here line
 * by line; regenerate the files on purpose with UPDATE_GOLDEN=1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { deployPlan, type Plan, type PlanInputs } from '../../infra-scripts/deploy/plan';
import { runPlan, show } from '../../infra-scripts/deploy/runner';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';
import { agentPolicies } from './deploy.inputs';

const inputs: PlanInputs = {
  sourceHash: 'fixed-source-hash',
  agentPolicies,
  functionPolicies: {
    instanceEvents: 'node_prefix "backend-" { policy = "write" }',
    healthSweep: 'node_prefix "haproxy-" { policy = "write" }',
    scalingAlerts: 'key_prefix "scaling-alerts/" { policy = "write" }',
  },
  forceLeavePolicy: 'operator = "write"',
};
const { forceLeavePolicy: _none, ...withoutForceLeave } = inputs;

const cases: { name: string; config: Record<string, unknown>; inputs: PlanInputs }[] = [
  { name: 'default', config: { project: 'demo-project' }, inputs },
  {
    name: 'custom',
    config: {
      project: 'demo-project',
      deployment: 'prod',
      region: 'europe-west1',
      zones: ['europe-west1-b', 'europe-west1-d'],
      imageProject: 'images-project',
      consul: { servers: 5, machineType: 'e2-medium', imageFamily: 'my-consul' },
      backend: { min: 3, max: 10, targetCpu: 0.9 },
      healthSweep: {
        invokers: ['group:sre@example.com', 'user:ana@example.com'],
        httpIngress: 'all',
        repairOrphans: true,
      },
      healthSweepSchedule: '*/2 * * * *',
    },
    inputs,
  },
  {
    name: 'instance-events-only',
    config: { project: 'demo-project', functions: ['instanceEvents'] },
    inputs: withoutForceLeave,
  },
];

async function render(plan: Plan): Promise<string> {
  const lines: string[] = [];
  await runPlan(plan, {
    exec: () => Promise.reject(new Error('a dry run runs nothing')),
    generators: {
      gossipKey: () => '',
      uuid: () => '',
      tls: () => Promise.reject(new Error('a dry run generates nothing')),
    },
    log: (l) => lines.push(l),
    dryRun: true,
    rerun: 'x',
  });
  lines.push('', 'checks expect:');
  for (const s of plan.steps) lines.push(`  ${s.id}: ${JSON.stringify(s.check.expect)}`);
  lines.push('', 'lookups:');
  // By name: their order means nothing, the runner finds each by its name.
  for (const [name, args] of Object.entries(plan.lookups).sort(([a], [b]) => a.localeCompare(b)))
    lines.push(`  ${name}: ${show(args)}`);
  for (const s of plan.steps) {
    if (s.tls) lines.push('', `tls of ${s.id}: ${JSON.stringify(s.tls)}`);
    for (const r of s.run) {
      if (r.stdin && 'script' in r.stdin) lines.push('', `stdin of ${s.id}:`, r.stdin.script);
    }
  }
  return `${lines.join('\n')}\n`;
}

describe('deploy and teardown plans, against the committed dry runs', () => {
  for (const k of cases) {
    it(`${k.name}`, async () => {
      const c = resolveConfig(k.config);
      for (const [action, plan] of [
        ['deploy', deployPlan(c, k.inputs)],
        ['teardown', teardownPlan(c, k.inputs)],
      ] as const) {
        const file = path.join(__dirname, 'deploy.golden', `${k.name}.${action}.txt`);
        const text = await render(plan);
        if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
        expect(text).toBe(readFileSync(file, 'utf8'));
      }
    });
  }
});
