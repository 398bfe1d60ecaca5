/**
 * The deploy's retirement of the role write tokens an upgraded deployment keeps from before
 * per-instance identity: where it sits in the plan, what its script deletes, and how the runner
 * plays it against a gcloud that holds the legacy secrets and groups that are (not yet) rolled out.
 */
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { deployPlan, type Plan, type PlanInputs } from '../../infra-scripts/deploy/plan';
import { runPlan, type Exec } from '../../infra-scripts/deploy/runner';
import { createKit } from '../../infra-scripts/deploy/steps/kit';
import { legacyTokenSteps, retireLines, ROLLOUT_WAIT_SECONDS } from '../../infra-scripts/deploy/steps/legacy';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';
import { agentPolicies } from './deploy.inputs';

const inputs: PlanInputs = { sourceHash: 'abc', agentPolicies, functionPolicies: {} };
const c = resolveConfig({ project: 'demo-project', functions: ['instanceEvents'] });
const legacy: Plan = { steps: legacyTokenSteps(createKit(c, inputs)).steps, lookups: {} };
const legacySecrets = ['backend', 'haproxy', 'frontend'].map((r) => `consul-agent-token-${r}`);
const generators = {
  gossipKey: () => 'G',
  uuid: () => 'U',
  tls: async () => ({ 'ca-cert': 'C', 'ca-key': 'K', 'server-cert': 'S', 'server-key': 'SK' }),
};

/**
 * gcloud as far as these steps ask it: `secrets list` prints the full names of what `secrets` holds
 * and applies the `--filter=name~RE` client-side as gcloud does; `wait-until` succeeds for a group in
 * `rolled` and otherwise fails with gcloud's own timeout; `ssh` and `secrets delete` are recorded.
 */
function fakeGcloud(secrets: Set<string>, rolled: Set<string>) {
  const ran: string[][] = [];
  const exec: Exec = async (args) => {
    if (args[0] === 'secrets' && args[1] === 'list') {
      const quoted = /^--filter=name~"(.*)"$/.exec(args.find((a) => a.startsWith('--filter=')) ?? '');
      if (!quoted) return { code: 1, stdout: '', stderr: 'ERROR: (gcloud.secrets.list) Unexpected tokens' };
      const filter = new RegExp(quoted[1] as string);
      const names = [...secrets]
        .map((s) => `projects/123456789012/secrets/${s}`)
        .filter((n) => filter.test(n));
      return { code: 0, stdout: names.map((n) => `${n}\n`).join(''), stderr: '' };
    }
    ran.push(args);
    if (args.includes('wait-until')) {
      return rolled.has(args[4] as string)
        ? { code: 0, stdout: 'Version target is reached\n', stderr: '' }
        : {
            code: 1,
            stdout: 'Waiting for group to reach version target\n',
            stderr:
              'ERROR: (gcloud.compute.instance-groups.managed.wait-until) Timeout while waiting for group to reach version target.\n',
          };
    }
    if (args[0] === 'secrets' && args[1] === 'delete') {
      if (!secrets.delete(args[2] as string)) return { code: 1, stdout: '', stderr: 'NOT_FOUND' };
    }
    return { code: 0, stdout: '', stderr: '' };
  };
  return { exec, ran };
}

const play = async (exec: Exec) => {
  const lines: string[] = [];
  const result = await runPlan(legacy, { exec, generators, log: (l) => lines.push(l), rerun: 'deploy.sh' });
  return { result, out: lines.join('\n') };
};

describe('retiring the legacy role tokens', () => {
  it('comes last in the deploy, after the groups roll, and teardown has nothing of it to undo', () => {
    const ids = deployPlan(c, inputs).steps.map((s) => s.id);
    expect(ids.slice(-5)).toEqual([
      'legacy-tokens-rollout',
      'legacy-tokens-consul',
      'legacy-secret-backend',
      'legacy-secret-haproxy',
      'legacy-secret-frontend',
    ]);
    expect(ids.indexOf('mig-frontend-template')).toBeLessThan(ids.indexOf('legacy-tokens-rollout'));
    expect(teardownPlan(c, inputs).steps.some((s) => s.id.includes('legacy'))).toBe(false);
    // The deploy no longer makes what it retires.
    const made = deployPlan(c, inputs).steps.filter((s) => !s.id.startsWith('legacy'));
    for (const name of legacySecrets) expect(JSON.stringify(made)).not.toContain(`"${name}"`);
  });

  it('waits for every client group, then deletes in Consul first and the secrets after', () => {
    const [rollout, consul, ...secrets] = legacy.steps;
    expect(rollout?.run.map((r) => r.args.slice(3, 7))).toEqual([
      ['wait-until', 'ilb-backend', '--region=us-central1', '--version-target-reached'],
      ['wait-until', 'ilb-haproxy', '--region=us-central1', '--version-target-reached'],
      ['wait-until', 'ilb-frontend', '--zone=us-central1-a', '--version-target-reached'],
    ]);
    expect(rollout?.run[0]?.args).toContain(`--timeout=${ROLLOUT_WAIT_SECONDS}`);
    expect(rollout?.later?.why).toMatch(/run the deploy again after the rollout/);
    for (const s of [consul, ...secrets]) expect(s?.after).toBe('legacy-tokens-rollout');
    expect(consul?.run[0]?.args.slice(0, 3)).toEqual(['compute', 'ssh', 'consul-ilb-0']);
    expect(secrets.map((s) => s.run[0]?.args.slice(0, 3))).toEqual(
      legacySecrets.map((name) => ['secrets', 'delete', name]),
    );
  });

  it("deletes only the three roles' tokens and policies, never the servers' or the defaults", () => {
    const script = retireLines().join('\n');
    expect(script).toContain('for role in backend haproxy frontend; do');
    expect(script).toContain('"ilb-$role agent token"');
    expect(script).toContain('"ilb-$role"');
    expect(script).not.toMatch(/ilb-consul|-default/);
    // A failed read stops the script (set -e on an assignment), never "deleted 0".
    expect(retireLines().slice(0, 2)).toEqual([
      'tokens=$(consul acl token list -format=json)',
      'policies=$(consul acl policy list -format=json)',
    ]);
  });

  it('a fresh deployment: nothing to do, nothing run', async () => {
    const g = fakeGcloud(
      new Set(['consul-agent-token-consul', 'consul-agent-token-backend-default']),
      new Set(),
    );
    const { result, out } = await play(g.exec);
    expect(result).toEqual({ ok: true, ran: 0, skipped: 5 });
    expect(g.ran).toEqual([]);
    expect(out).toContain('done: 0 of 5 steps changed something');
  });

  it('an upgrade while a group still rolls: nothing deleted, the steps left for the next deploy', async () => {
    const secrets = new Set(legacySecrets);
    const g = fakeGcloud(secrets, new Set(['ilb-backend']));
    const { result, out } = await play(g.exec);
    expect(result).toMatchObject({ ok: true, ran: 0, left: expect.any(Array) });
    expect(g.ran.map((a) => a[1])).toEqual(['instance-groups', 'instance-groups']);
    expect(secrets.size).toBe(3);
    expect(out).toContain('run the deploy again after the rollout to retire the legacy role tokens');
    expect(out).toMatch(/5 left for a later run; rerun later to remove: wait until every client group/);
  });

  it('an upgrade once the groups rolled: tokens, then secrets; the next deploy changes nothing', async () => {
    const secrets = new Set([...legacySecrets, 'consul-agent-token-backend-default']);
    const g = fakeGcloud(secrets, new Set(['ilb-backend', 'ilb-haproxy', 'ilb-frontend']));
    const first = await play(g.exec);
    expect(first.result).toEqual({ ok: true, ran: 5, skipped: 0 });
    expect(g.ran.map((a) => a.slice(0, 2).join(' '))).toEqual([
      'compute instance-groups',
      'compute instance-groups',
      'compute instance-groups',
      'compute ssh',
      'secrets delete',
      'secrets delete',
      'secrets delete',
    ]);
    expect([...secrets]).toEqual(['consul-agent-token-backend-default']);
    g.ran.length = 0;
    const second = await play(g.exec);
    expect(second.result).toEqual({ ok: true, ran: 0, skipped: 5 });
    expect(g.ran).toEqual([]);
  });

  it('resumes after a partial retirement (one secret left)', async () => {
    const secrets = new Set(['consul-agent-token-frontend']);
    const g = fakeGcloud(secrets, new Set(['ilb-backend', 'ilb-haproxy', 'ilb-frontend']));
    const { result } = await play(g.exec);
    // The gate and the Consul script run again (idempotent); only the frontend secret is deleted.
    expect(result).toEqual({ ok: true, ran: 3, skipped: 2 });
    expect(g.ran.filter((a) => a[1] === 'delete').map((a) => a[2])).toEqual(['consul-agent-token-frontend']);
    expect(secrets.size).toBe(0);
  });
});
