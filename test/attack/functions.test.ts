/**
 * Attack suite, the functions' footholds (issue 18, "Each function's token" in docs/security.md):
 * - from the seat of a caller of healthSweepHttp (an operator's identity, or anything IAM let
 *   through): whatever the request says, the sweep only reports; acting is another entry point;
 * - from the seat of each deployed function: the Consul tokens the deploy really hands it (its
 *   `--set-secrets`, created from the repository's policy files as the deploy's ACL script does)
 *   are tried against `PUT /v1/agent/force-leave`; only instanceEvents may.
 */
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { readInputs } from '../../infra-scripts/deploy/main';
import { deployPlan } from '../../infra-scripts/deploy/plan';
import { repoRoot } from '../harness';
import { project, zones } from '../integration/compute-emulator-helpers';
import {
  groupWithPassingNodes,
  loadSweepEntries,
  startSweepWorld,
  type SweepWorld,
} from '../integration/health-sweep.entry';
import { keys, registerMember, type Member } from '../integration/health-sweep.support';

const [zoneA] = zones as [string, string];
let world: SweepWorld;

beforeAll(async () => {
  world = await startSweepWorld();
}, 90_000);

afterAll(() => world?.stop());

describe('a caller of healthSweepHttp', () => {
  // Stale for sure: no group lists it and Compute answers 404 for its instance id.
  const stale: Member = {
    name: 'backend-stale-1',
    id: '9400000000000000001',
    zone: zoneA,
    group: 'backend-a',
    role: 'backend',
  };

  beforeAll(async () => {
    // A healthy group of one, its member's node passing: a sweep here may act (not report-only).
    await groupWithPassingNodes(world, { zone: zoneA, name: 'backend-a', size: 1 });
    await loadSweepEntries(world, { zone: zoneA, name: 'backend-a' });
    await registerMember(world.admin, stale, project);
  });

  test('changes nothing with any request it can send, stale nodes present', async () => {
    const url = await world.serve('healthSweepHttp');
    const json = { authorization: 'Bearer attacker', 'content-type': 'application/json' };
    const requests: Array<[string, RequestInit]> = [
      // As the deploy README's curl sent it before: POST, no body.
      [url, { method: 'POST', headers: { authorization: 'Bearer attacker' } }],
      [url, { method: 'POST', headers: json, body: '{}' }],
      [`${url}?dryRun=false`, { method: 'GET', headers: { authorization: 'Bearer attacker' } }],
      [url, { method: 'POST', headers: json, body: JSON.stringify({ dryRun: false }) }],
      [url, { method: 'POST', headers: json, body: JSON.stringify({ act: true }) }],
      [
        `${url}?act=true`,
        { method: 'POST', headers: json, body: JSON.stringify({ act: true, dryRun: '0' }) },
      ],
    ];
    const answers: Array<{ status: number; dryRun?: unknown }> = [];
    for (const [u, init] of requests) {
      const res = await fetch(u, init);
      const body = (await res.json()) as { dryRun?: unknown };
      answers.push({ status: res.status, dryRun: body.dryRun });
    }
    console.log(`healthSweepHttp answers: ${JSON.stringify(answers)}`);
    // Every answer is a report or a refusal, and the stale node and the sweep's state are untouched.
    expect(answers.filter((a) => a.status === 200 && a.dryRun !== true)).toEqual([]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 403, 403]);
    // It was a sweep that could act: its report names the stale node and nothing made it report-only.
    const report = (await (
      await fetch(url, { method: 'POST', headers: { authorization: 'Bearer attacker' } })
    ).json()) as { report?: { reportOnly: string[]; stale: Array<{ node: string }> } };
    expect(report.report?.reportOnly).toEqual([]);
    expect(report.report?.stale.map((s) => s.node)).toEqual([stale.name]);
    expect((await world.admin.catalog.nodes()).map((n) => n.name)).toContain(stale.name);
    expect(await world.admin.kv.keys(keys.root)).toEqual([]);
  });
});

describe("each deployed function's Consul tokens", () => {
  test('only instanceEvents can force-leave: every other entry point is refused PUT /v1/agent/force-leave', async () => {
    const c = resolveConfig({ project: 'demo-project' });
    const plan = deployPlan(c, readInputs(repoRoot()));
    // The deploy's ACL script: each policy's rules (a heredoc) and each token secret's policy.
    const acl = plan.steps.find((s) => s.id === 'consul-acl')?.run[0]?.stdin as { script: string };
    const rules = new Map(
      [...acl.script.matchAll(/^cat >"\$dir\/([^"]+)\.hcl" <<'ILB_ACL_EOF'\n([\s\S]*?)\nILB_ACL_EOF$/gm)].map(
        (m) => [m[1] as string, m[2] as string],
      ),
    );
    const policyOf = new Map(
      [...acl.script.matchAll(/^token (\S+) (\S+) /gm)].map((m) => [m[1] as string, m[2] as string]),
    );
    // The token secrets each deployed entry point gets, as Cloud Run mounts them.
    const held = new Map<string, string[]>();
    for (const step of plan.steps)
      for (const { args } of step.run) {
        if (args[0] !== 'functions' || args[1] !== 'deploy') continue;
        const secrets =
          args.find((a) => a.startsWith('--set-secrets='))?.slice('--set-secrets='.length) ?? '';
        held.set(
          args[2] as string,
          secrets
            .split(',')
            .filter((s) => /^CONSUL_[A-Z_]*TOKEN=/.test(s))
            .map((s) => s.replace(/^[^=]+=/, '').replace(/:latest$/, '')),
        );
      }
    expect([...held.keys()].sort()).toEqual(
      ['healthSweep', 'healthSweepActHttp', 'healthSweepHttp', 'instanceEvents', 'scalingAlerts'].sort(),
    );
    const tokens = new Map<string, string>();
    for (const policy of new Set(policyOf.values())) {
      if (!rules.has(policy)) continue;
      await world.server.consul.acl.createPolicy(`attack-${policy}`, rules.get(policy) as string);
    }
    const secretOf = async (secret: string) => {
      const existing = tokens.get(secret);
      if (existing) return existing;
      const token = await world.server.consul.acl.createToken({
        policies: [`attack-${policyOf.get(secret)}`],
      });
      tokens.set(secret, token);
      return token;
    };
    const canForceLeave: string[] = [];
    for (const [entry, secrets] of held) {
      for (const secret of secrets) {
        const res = await fetch(`${world.server.httpAddr}/v1/agent/force-leave/backend-victim?prune=1`, {
          method: 'PUT',
          headers: { 'X-Consul-Token': await secretOf(secret) },
        });
        if (res.status !== 403) canForceLeave.push(`${entry} with ${secret} (${res.status})`);
      }
    }
    console.log(`tokens that may force-leave: ${JSON.stringify(canForceLeave)}`);
    expect(canForceLeave).toEqual([
      expect.stringMatching(/^instanceEvents with consul-token-fn-instance-events-force-leave \(\d+\)$/),
    ]);
  });
});
