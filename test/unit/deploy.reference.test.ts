/**
 * What a reading of Google's reference found in the deploy (issue 19): the functions' build
 * identity, a custom role a teardown soft-deleted, the Pub/Sub agent's token creator role for
 * authenticated push, paginated groups, and a teardown that meets the egress subnet Cloud Run still
 * holds. Each runs the plan's own steps through the runner against a small model of the API answers.
 */
import { resolveConfig, type ResolvedConfig } from '../../infra-scripts/deploy/config';
import { deployPlan, type Plan, type PlanInputs, type Step } from '../../infra-scripts/deploy/plan';
import { checkPasses, runPlan, type Exec } from '../../infra-scripts/deploy/runner';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';
import { topicFunctions } from '../../functions/catalog';
import { agentPolicies } from './deploy.inputs';

const inputs: PlanInputs = { sourceHash: 'abc', agentPolicies, functionPolicies: {} };
const config = (functions = ['instanceEvents', 'healthSweep', 'scalingAlerts']): ResolvedConfig =>
  resolveConfig({ project: 'demo-project', functions });
const line = (args: string[]) => args.join(' ');
const commands = (plan: Plan) => plan.steps.flatMap((s) => s.run.map((r) => r.args));
const generators = {
  gossipKey: () => '',
  uuid: () => '',
  tls: () => Promise.reject(new Error('no TLS here')),
};
/** Runs these steps of a plan (with its lookups) against `exec`, recording every call. */
async function run(plan: Plan, steps: Step[], exec: Exec) {
  const calls: string[] = [];
  const log: string[] = [];
  const result = await runPlan(
    { steps, lookups: plan.lookups },
    {
      exec: (args, stdin) => {
        calls.push(line(args));
        return exec(args, stdin);
      },
      generators,
      log: (l) => log.push(l),
      rerun: 'infra-scripts/teardown.sh --project demo-project --yes',
    },
  );
  return { result, calls, log: log.join('\n') };
}
const ok = (stdout = '') => Promise.resolve({ code: 0, stdout, stderr: '' });
const fail = (stderr: string) => Promise.resolve({ code: 1, stdout: '', stderr });

describe('the functions build as their own build account', () => {
  const plan = deployPlan(config(), inputs);
  const cmds = commands(plan).map(line);
  const build = 'ilb-fn-build@demo-project.iam.gserviceaccount.com';

  it('creates it, grants it the roles Google lists, and names it on every functions deploy', () => {
    const created = cmds.findIndex((l) => l.startsWith('iam service-accounts create ilb-fn-build '));
    expect(created).toBeGreaterThanOrEqual(0);
    const grants = cmds.filter(
      (l) =>
        l.startsWith('projects add-iam-policy-binding') && l.includes(`--member=serviceAccount:${build}`),
    );
    expect(grants.map((l) => /--role=(\S+)/.exec(l)?.[1]).sort()).toEqual([
      'roles/artifactregistry.writer',
      'roles/logging.logWriter',
      'roles/storage.objectViewer',
    ]);
    const deploys = cmds.filter((l) => l.startsWith('functions deploy'));
    expect(deploys).toHaveLength(5);
    for (const d of deploys) {
      expect(d).toContain(`--build-service-account=projects/demo-project/serviceAccounts/${build}`);
    }
    // Granted before the first build.
    const lastGrant = Math.max(...grants.map((g) => cmds.indexOf(g)));
    expect(lastGrant).toBeLessThan(cmds.findIndex((l) => l.startsWith('functions deploy')));
  });

  it('is removed with its grants by teardown, and absent without functions', () => {
    const down = commands(teardownPlan(config(), inputs)).map(line);
    expect(down).toContain(`iam service-accounts delete ${build} --project demo-project --quiet`);
    expect(down.filter((l) => l.includes(`--member=serviceAccount:${build}`))).toHaveLength(3);
    const none = commands(deployPlan(config([]), inputs)).map(line);
    expect(none.some((l) => l.includes('fn-build') || l.includes('gcp-sa-pubsub'))).toBe(false);
  });
});

describe('a custom role a teardown deleted within the last 7 days', () => {
  const plan = deployPlan(config(['instanceEvents']), inputs);
  const role = 'ilb_instanceEvents';
  const steps = plan.steps.filter(
    (s) => s.id.startsWith('role-instanceEvents') || s.id === 'iam-instanceEvents-compute',
  );

  /** IAM as it answers for a soft-deleted role: describe finds it, a binding of it fails. */
  function iam(state: { deleted: boolean; bound: boolean }): Exec {
    return (args) => {
      const l = line(args);
      if (l.startsWith(`iam roles describe ${role}`)) {
        const format = args.find((a) => a.startsWith('--format=')) ?? '';
        if (format === '--format=value(deleted)') return ok(state.deleted ? 'True' : '');
        if (format === '--format=value(includedPermissions)')
          return ok(topicFunctions.instanceEvents.permissions.join(';'));
        return ok(`projects/demo-project/roles/${role}`);
      }
      if (l.startsWith(`iam roles create ${role}`)) return fail('ERROR: ALREADY_EXISTS');
      if (l.startsWith(`iam roles undelete ${role}`)) {
        state.deleted = false;
        return ok();
      }
      if (l.startsWith('projects get-iam-policy')) return ok('{}');
      if (l.startsWith('projects add-iam-policy-binding')) {
        if (state.deleted)
          return fail(`ERROR: INVALID_ARGUMENT: Role projects/demo-project/roles/${role} is deleted.`);
        state.bound = true;
        return ok();
      }
      return fail(`unexpected: ${l}`);
    };
  }

  it('is undeleted (its deleted field is read), then bound', async () => {
    const state = { deleted: true, bound: false };
    const { result, calls, log } = await run(plan, steps, iam(state));
    expect({ ok: result.ok, log }).toMatchObject({ ok: true });
    expect(calls).toContain(`iam roles undelete ${role} --project demo-project`);
    expect(calls.some((c) => c.startsWith(`iam roles create ${role}`))).toBe(false);
    expect(state).toEqual({ deleted: false, bound: true });
  });

  it('is left alone when it is not deleted', async () => {
    const { result, calls } = await run(plan, steps, iam({ deleted: false, bound: false }));
    expect(result.ok).toBe(true);
    expect(calls.some((c) => c.includes('undelete'))).toBe(false);
  });

  it('is not deleted again by a second teardown', () => {
    const del = teardownPlan(config(['instanceEvents']), inputs).steps.find(
      (s) => s.id === 'delete-role-instanceEvents',
    ) as Step;
    expect(del.check.args).toContain('--format=value(description,deleted)');
    const marker = 'gce-ilb-orchestrator deployment=ilb';
    expect(checkPasses(del.check, 0, `${marker}\t\n`)).toBe(true);
    expect(checkPasses(del.check, 0, `${marker}\tTrue\n`)).toBe(false);
  });
});

describe("Pub/Sub's service agent may mint tokens for authenticated push", () => {
  const plan = deployPlan(config(), inputs);
  const cmds = commands(plan).map(line);
  const agent = 'serviceAccount:service-@{projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com';

  it('is granted the token creator role on the project before the functions, through the project number lookup', () => {
    const grant = cmds.findIndex(
      (l) =>
        l.startsWith('projects add-iam-policy-binding') &&
        l.includes('--role=roles/iam.serviceAccountTokenCreator'),
    );
    expect(cmds[grant]).toContain(`--member=${agent}`);
    expect(grant).toBeLessThan(cmds.findIndex((l) => l.startsWith('functions deploy')));
    expect(plan.lookups.projectNumber).toEqual([
      'projects',
      'describe',
      'demo-project',
      '--format=value(projectNumber)',
    ]);
  });

  it('keeps the grant at teardown', () => {
    const down = commands(teardownPlan(config(), inputs)).map(line);
    expect(down.some((l) => l.includes('serviceAccountTokenCreator'))).toBe(false);
  });
});

describe('managed instance groups page listManagedInstances, as the emulator does', () => {
  const plan = deployPlan(config(), inputs);

  it('creates every group paginated and converges an older pageless one', () => {
    const creates = commands(plan).filter((a) =>
      line(a).startsWith('compute instance-groups managed create'),
    );
    expect(creates).toHaveLength(3);
    for (const c of creates) expect(c).toContain('--list-managed-instances-results=paginated');
    for (const role of ['backend', 'haproxy', 'frontend']) {
      const s = plan.steps.find((x) => x.id === `mig-${role}-paging`) as Step;
      expect(s.check.args).toContain('--format=value(listManagedInstancesResults)');
      expect(checkPasses(s.check, 0, 'PAGELESS\n')).toBe(false);
      expect(checkPasses(s.check, 0, 'PAGINATED\n')).toBe(true);
      expect(line(s.run[0]?.args ?? [])).toMatch(
        new RegExp(
          `^compute instance-groups managed update ilb-${role} .*--list-managed-instances-results=paginated`,
        ),
      );
    }
  });
});

describe('teardown while Cloud Run still holds the egress subnet', () => {
  const c = config(['instanceEvents']);
  const plan = teardownPlan(c, inputs);
  const from = plan.steps.findIndex((s) => s.id === 'delete-nat');
  const steps = plan.steps.slice(from);
  // Compute's answer while a Direct VPC egress address is still reserved in the subnet.
  const held =
    "ERROR: (gcloud.compute.networks.subnets.delete) Could not fetch resource:\n - The subnetwork resource 'projects/demo-project/regions/us-central1/subnetworks/ilb-fn-egress' is already being used by 'projects/demo-project/regions/us-central1/addresses/serverless-ipv4-1712345678901234567'";
  const compute =
    (subnetDelete: () => Promise<{ code: number; stdout: string; stderr: string }>): Exec =>
    (args) => {
      const l = line(args);
      if (l.includes(' describe ')) return ok('gce-ilb-orchestrator deployment=ilb');
      if (l.startsWith('compute networks subnets delete ilb-fn-egress')) return subnetDelete();
      return ok();
    };

  it('leaves the subnet and its network for a later run, says so, and succeeds', async () => {
    const { result, calls, log } = await run(
      plan,
      steps,
      compute(() => fail(held)),
    );
    expect(result).toMatchObject({
      ok: true,
      left: ['delete subnet ilb-fn-egress (functions egress, 10.10.16.0/26)', 'delete network ilb-net'],
    });
    // The VMs' subnet still goes; the network is not tried.
    expect(calls).toContain(
      'compute networks subnets delete ilb-us-central1 --region=us-central1 --project demo-project --quiet',
    );
    expect(calls.some((l) => l.startsWith('compute networks delete'))).toBe(false);
    expect(log).toContain('rerun later to remove: delete subnet ilb-fn-egress');
    expect(log).toContain('infra-scripts/teardown.sh --project demo-project --yes');
    expect(log).toContain('serverless-ipv4-1712345678901234567');
  });

  it('still stops at any other failure of that delete', async () => {
    const { result } = await run(
      plan,
      steps,
      compute(() => fail('ERROR: PERMISSION_DENIED')),
    );
    expect(result).toMatchObject({ ok: false, error: 'ERROR: PERMISSION_DENIED' });
  });

  it('removes both once the addresses are released', async () => {
    const { result, calls } = await run(
      plan,
      steps,
      compute(() => ok()),
    );
    expect(result).toEqual({ ok: true, ran: steps.length, skipped: 0 });
    expect(calls.some((l) => l.startsWith('compute networks delete ilb-net'))).toBe(true);
  });
});
