/**
 * infra-scripts/deploy.sh and teardown.sh against the strict stand-in gcloud (test/fake-gcloud):
 * first run creates everything, second creates nothing, a failure resumes, dry run runs nothing,
 * teardown deletes exactly what deploy created; and what the commands must never do.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { resolveConfig } from '../../infra-scripts/deploy/config';
import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import { loadScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import { gcloudExec, generators, readInputs } from '../../infra-scripts/deploy/main';
import { deployPlan } from '../../infra-scripts/deploy/plan';
import { runPlan } from '../../infra-scripts/deploy/runner';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';

const root = path.resolve(__dirname, '../..');
const fakeBin = path.join(root, 'test/fake-gcloud/bin');
const project = 'demo-project';

interface Call {
  args: string[];
  code: number;
}
interface State {
  resources: Record<
    string,
    {
      type: string;
      externalIp?: boolean;
      labels?: Record<string, string>;
      deleted?: boolean;
      purpose?: string;
      env?: Record<string, string>;
      eventTrigger?: unknown;
      url?: string;
      status?: { autoscaler?: string };
    }
  >;
  iam: Record<string, { role: string; members: string[] }[]>;
  secretValues: Record<string, string[]>;
  ssh?: { instance: string; stdin: string }[];
  holdsEgressAddresses?: boolean;
}

/** What IAM keeps after a teardown: the custom roles, deleted (undeletable for 7 days). */
const softDeleted = (s: State) =>
  Object.entries(s.resources).filter(([, r]) => r.type === 'iam roles' && r.deleted === true);
const withoutSoftDeleted = (s: State) =>
  Object.fromEntries(Object.entries(s.resources).filter(([, r]) => !(r.type === 'iam roles' && r.deleted)));
/** The one project grant teardown keeps: Pub/Sub's agent may mint push tokens (infra-scripts/deploy/README.md). */
const keptGrant = {
  role: 'roles/iam.serviceAccountTokenCreator',
  members: ['serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com'],
};

let tmp: string;
let server: ChildProcess;
let fakeUrl: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ilb-deploy-'));
  // One stand-in process answers every call (bin/gcloud reaches it with curl).
  server = spawn('node', [path.join(root, 'test/fake-gcloud/gcloud.js'), '--serve'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  fakeUrl = await new Promise<string>((resolve, reject) => {
    server.stdout?.once('data', (d: Buffer) =>
      resolve(`http://127.0.0.1:${/listening (\d+)/.exec(d.toString())?.[1]}`),
    );
    server.once('error', reject);
  });
  // deploy.sh builds dist/ itself when it is stale; build once here, outside the timed runs.
  await promisify(execFile)(path.join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
    cwd: root,
  });
}, 300_000);
afterAll(() => {
  server.kill();
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function freshState(seed?: Partial<State>): string {
  const dir = path.join(tmp, `state-${++n}`);
  mkdirSync(dir);
  if (seed) {
    writeFileSync(
      path.join(dir, 'state.json'),
      JSON.stringify({ projectNumber: '123456789012', resources: {}, iam: {}, secretValues: {}, ...seed }),
    );
  }
  return dir;
}

function script(name: string, args: string[], state: string, input = '') {
  return new Promise<{ code: number; out: string }>((resolve, reject) => {
    const child = spawn('bash', [path.join(root, 'infra-scripts', name), ...args], {
      env: {
        ...process.env,
        PATH: `${fakeBin}:${process.env.PATH}`,
        FAKE_GCLOUD_STATE: state,
        FAKE_GCLOUD_URL: fakeUrl,
      },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
    child.stdin.end(input);
  });
}

const calls = (state: string): Call[] =>
  existsSync(path.join(state, 'calls.jsonl'))
    ? readFileSync(path.join(state, 'calls.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Call)
    : [];
const readState = (state: string): State =>
  JSON.parse(readFileSync(path.join(state, 'state.json'), 'utf8')) as State;
const readOnly = /^(describe|list|get-iam-policy)$/;
const verbOf = (args: string[]) =>
  args.find((a) =>
    /^(create|deploy|describe|list|get-iam-policy|delete|update|add|ssh|set-autoscaling|start-update|add-iam-policy-binding|remove-iam-policy-binding|add-invoker-policy-binding)$/.test(
      a,
    ),
  ) ?? '?';
const mutating = (cs: Call[]) => cs.filter((c) => !readOnly.test(verbOf(c.args)));

const deployArgs = ['--project', project];
// A few hundred stand-in calls per run; slow on a loaded machine.
const LONG = 300_000;

describe('deploy.sh with the stand-in gcloud', () => {
  it('dry run prints every step in order and runs nothing', async () => {
    const state = freshState();
    const r = await script('deploy.sh', [...deployArgs, '--dry-run'], state);
    expect(r.code).toBe(0);
    const steps = r.out.match(/^step \d+ of (\d+):/gm) ?? [];
    const total = Number(/of (\d+):/.exec(steps[0] ?? '')?.[1]);
    expect(steps).toHaveLength(total);
    expect(r.out).toContain(`step ${total} of ${total}:`);
    expect(r.out).toContain('nothing was run');
    expect(calls(state)).toEqual([]);
  });

  let deployed: string;
  let firstOut = '';
  it(
    'first run creates everything with flags gcloud accepts; second run creates nothing',
    async () => {
      deployed = freshState();
      const first = await script('deploy.sh', deployArgs, deployed);
      firstOut = first.out;
      expect({ code: first.code, tail: first.out.slice(-2000) }).toMatchObject({ code: 0 });
      const cs = calls(deployed);
      // No usage error (exit 2) anywhere: every flag was one gcloud knows.
      expect(cs.filter((c) => c.code === 2)).toEqual([]);
      expect(mutating(cs).every((c) => c.code === 0)).toBe(true);
      const s = readState(deployed);
      const types = new Set(Object.values(s.resources).map((r) => r.type));
      for (const t of [
        'compute networks',
        'compute networks subnets',
        'compute routers',
        'compute routers nats',
        'compute firewall-rules',
        'iam service-accounts',
        'iam roles',
        'secrets',
        'compute addresses',
        'compute instances',
        'compute health-checks',
        'compute instance-templates',
        'compute instance-groups managed',
        'pubsub topics',
        'pubsub subscriptions',
        'logging sinks',
        'functions',
      ]) {
        expect([t, types.has(t)]).toEqual([t, true]);
      }
      expect(s.ssh).toHaveLength(1);
      expect(s.ssh?.[0]?.stdin).toContain('consul acl token create -secret');

      const second = await script('deploy.sh', deployArgs, deployed);
      expect(second.code).toBe(0);
      expect(mutating(calls(deployed).slice(cs.length))).toEqual([]);
      expect(second.out).toMatch(/done: 0 of \d+ steps changed something/);
    },
    LONG,
  );

  it('grants no public or primitive role, opens only the frontend to the world, gives Consul servers no external IP, prints no secret', () => {
    const cs = calls(deployed);
    for (const c of cs) {
      const l = c.args.join(' ');
      expect(l).not.toMatch(/allUsers|allAuthenticatedUsers/);
      expect(l).not.toMatch(/--role=roles\/(owner|editor|viewer)\b/);
    }
    const world = cs.filter((c) => c.args.some((a) => a.includes('0.0.0.0/0')));
    expect(world.map((c) => c.args.slice(0, 4).join(' '))).toEqual([
      'compute firewall-rules create ilb-frontend-public',
    ]);
    const s = readState(deployed);
    const servers = Object.values(s.resources).filter((r) => r.type === 'compute instances');
    expect(servers).toHaveLength(3);
    expect(servers.every((r) => !r.externalIp)).toBe(true);
    const values = Object.values(s.secretValues).flat();
    expect(values.length).toBeGreaterThan(10);
    for (const v of values) expect(firstOut).not.toContain(v.trim());
    for (const members of Object.values(s.iam).flatMap((b) => b.map((x) => x.members))) {
      expect(members.some((m) => /allUsers|allAuthenticatedUsers|\{/.test(m))).toBe(false);
    }
  });

  it(
    'a failure mid-way stops with the command and how to resume; a rerun finishes and repeats nothing',
    async () => {
      const state = freshState();
      writeFileSync(
        path.join(state, 'fail.json'),
        JSON.stringify({ match: 'instance-templates create ilb-haproxy', times: 1 }),
      );
      const failed = await script('deploy.sh', deployArgs, state);
      expect(failed.code).toBe(1);
      expect(failed.out).toMatch(/step \d+ of \d+ failed: instance template ilb-haproxy-/);
      expect(failed.out).toContain('command: gcloud compute instance-templates create ilb-haproxy-');
      expect(failed.out).toContain('run again to resume');
      expect(failed.out).toContain('infra-scripts/deploy.sh --project demo-project');
      const before = calls(state).length;
      const resumed = await script('deploy.sh', deployArgs, state);
      expect(resumed.code).toBe(0);
      const all = calls(state);
      // Everything before the failure ran once; the resumed run made the rest.
      const creates = mutating(all)
        .filter((c) => c.code === 0)
        .map((c) => c.args.join(' '));
      expect(new Set(creates).size).toBe(creates.length);
      expect(
        mutating(all.slice(before)).some((c) =>
          c.args.join(' ').includes('instance-templates create ilb-haproxy-'),
        ),
      ).toBe(true);
      expect(Object.keys(readState(state).resources).sort()).toEqual(
        Object.keys(readState(deployed).resources).sort(),
      );
    },
    LONG,
  );

  it(
    'teardown asks first, then deletes exactly what deploy created and nothing else',
    async () => {
      const foreign = {
        resources: {
          'compute networks:default': { type: 'compute networks', name: 'default' },
          'secrets:other-secret': { type: 'secrets', name: 'other-secret', labels: { deployment: 'other' } },
          // Same name pattern, another deployment: teardown must leave it.
          'compute firewall-rules:ilb2-frontend-public': {
            type: 'compute firewall-rules',
            name: 'ilb2-frontend-public',
            description: 'gce-ilb-orchestrator deployment=ilb2',
          },
        },
        iam: {
          [`projects:${project}`]: [
            { role: 'roles/logging.logWriter', members: ['user:someone@example.com'] },
          ],
        },
      } as unknown as Partial<State>;
      const state = freshState(foreign);
      const seeded = readState(state);
      expect((await script('deploy.sh', deployArgs, state)).code).toBe(0);
      const created = Object.keys(readState(state).resources).filter((k) => !(k in seeded.resources));

      const refused = await script('teardown.sh', deployArgs, state, 'yes\n');
      expect(refused.code).toBe(2);
      expect(refused.out).toContain('--yes');
      expect(Object.keys(readState(state).resources)).toHaveLength(created.length + 3);

      const before = calls(state).length;
      const r = await script('teardown.sh', [...deployArgs, '--yes'], state);
      expect({ code: r.code, tail: r.out.slice(-1500) }).toMatchObject({ code: 0 });
      const after = readState(state);
      expect(withoutSoftDeleted(after)).toEqual(seeded.resources);
      expect(softDeleted(after).map(([k]) => k)).toEqual(created.filter((k) => k.startsWith('iam roles:')));
      expect(after.iam[`projects:${project}`]).toEqual([
        ...(seeded.iam[`projects:${project}`] ?? []),
        keptGrant,
      ]);
      const deletes = mutating(calls(state).slice(before));
      expect(deletes.every((c) => c.code === 0)).toBe(true);
      expect(
        deletes.every((c) => c.args.includes('delete') || c.args.includes('remove-iam-policy-binding')),
      ).toBe(true);
      // Reverse order: the functions go first, the network last.
      expect(deletes[0]?.args.slice(0, 2)).toEqual(['functions', 'delete']);
      expect(deletes[deletes.length - 1]?.args.slice(0, 3)).toEqual(['compute', 'networks', 'delete']);

      const afterFirst = calls(state).length;
      const again = await script('teardown.sh', [...deployArgs, '--yes'], state);
      expect(again.code).toBe(0);
      expect(mutating(calls(state).slice(afterFirst))).toEqual([]);
    },
    LONG,
  );
});

describe('every function wired (healthSweep, healthSweepHttp and scalingAlerts too), straight through the runner', () => {
  it(
    'deploys, redeploys nothing, tears down to nothing but the soft-deleted custom roles with the strict stand-in',
    async () => {
      const state = freshState();
      const inputs = readInputs(root);
      const c = resolveConfig({ project, healthSweep: { invokers: ['group:sre@example.com'] } });
      const exec = gcloudExec(path.join(fakeBin, 'gcloud'), {
        ...process.env,
        FAKE_GCLOUD_STATE: state,
        FAKE_GCLOUD_URL: fakeUrl,
      });
      const log: string[] = [];
      const opts = { exec, generators, log: (l: string) => log.push(l), rerun: 'x' };
      const first = await runPlan(deployPlan(c, inputs), opts);
      expect(first.ok ? 'ok' : log.slice(-4).join('\n')).toBe('ok');
      expect(calls(state).filter((x) => x.code === 2)).toEqual([]);
      const s = readState(state);
      const types = Object.values(s.resources).map((r) => r.type);
      expect(types).toEqual(
        expect.arrayContaining(['scheduler jobs', 'monitoring channels', 'monitoring policies']),
      );
      const scaling = s.iam['pubsub topics:scaling-alerts'] ?? [];
      expect(scaling).toEqual([
        {
          role: 'roles/pubsub.publisher',
          members: [
            'serviceAccount:service-123456789012@gcp-sa-monitoring-notification.iam.gserviceaccount.com',
          ],
        },
      ]);
      // The operators' HTTP function: no event trigger, invokable by the named group and nobody else.
      const http = s.resources['functions:healthSweepHttp'];
      expect(http?.eventTrigger).toBeUndefined();
      expect(http?.url).toContain('healthSweepHttp');
      expect(s.iam['run services:healthsweephttp']).toEqual([
        { role: 'roles/run.invoker', members: ['group:sre@example.com'] },
      ]);
      // Both sweep entry points get the deployment's groups (valid for the function) and both tokens.
      for (const f of ['healthSweep', 'healthSweepHttp']) {
        const env = s.resources[`functions:${f}`]?.env ?? {};
        const sweep = parseHealthSweepConfig(JSON.parse(env.HEALTH_SWEEP_CONFIG_JSON ?? 'null'));
        expect(sweep.groups.map((g) => g.name)).toEqual(['ilb-backend', 'ilb-haproxy', 'ilb-frontend']);
      }
      // scalingAlerts and both sweep entry points get the generated rules, naming the autoscalers
      // gcloud made (`<group>-<random>`), valid for the functions.
      const autoscalers = ['backend', 'haproxy'].map((role) =>
        (s.resources[`compute instance-groups managed:ilb-${role}`]?.status?.autoscaler ?? '')
          .split('/')
          .pop(),
      );
      expect(autoscalers).toEqual([
        expect.stringMatching(/^ilb-backend-\w{4}$/),
        expect.stringMatching(/^ilb-haproxy-\w{4}$/),
      ]);
      for (const f of ['scalingAlerts', 'healthSweep', 'healthSweepHttp']) {
        const env = s.resources[`functions:${f}`]?.env ?? {};
        const { rules } = loadScalingAlertsConfig({ SCALING_RULES_JSON: env.SCALING_RULES_JSON });
        expect(Object.values(rules.tiers).map((t) => t.autoscalers[0]?.name)).toEqual(autoscalers);
        expect(rules.ownership.namePrefixes.some((p) => autoscalers[0]?.startsWith(p))).toBe(true);
      }
      expect(s.resources['functions:instanceEvents']?.env).not.toHaveProperty('SCALING_RULES_JSON');
      for (const secret of ['consul-token-fn-health-sweep', 'consul-token-fn-instance-events-force-leave']) {
        expect(s.resources[`secrets:${secret}`]).toBeDefined();
        expect(s.secretValues[secret]).toHaveLength(1);
      }
      // instanceEvents alone holds a force-leave token.
      expect(s.resources['secrets:consul-token-fn-health-sweep-force-leave']).toBeUndefined();
      const aclScript = readState(state).ssh?.[0]?.stdin ?? '';
      expect(aclScript).toContain('policy fn-force-leave');
      expect(aclScript).toContain('token consul-token-fn-instance-events-force-leave fn-force-leave');
      const second = await runPlan(deployPlan(c, inputs), opts);
      expect(second).toMatchObject({ ok: true, ran: 0 });
      const down = await runPlan(teardownPlan(c, inputs), opts);
      expect(down).toMatchObject({ ok: true });
      expect(down.ok && down.left).toBeUndefined();
      expect(withoutSoftDeleted(readState(state))).toEqual({});
    },
    LONG,
  );
});

describe('deploy, teardown and deploy again, as Google answers', () => {
  const run = async (state: string, plan: 'deploy' | 'teardown') => {
    const c = resolveConfig({ project, functions: ['instanceEvents'] });
    const exec = gcloudExec(path.join(fakeBin, 'gcloud'), {
      ...process.env,
      FAKE_GCLOUD_STATE: state,
      FAKE_GCLOUD_URL: fakeUrl,
    });
    const log: string[] = [];
    const opts = {
      exec,
      generators,
      log: (l: string) => log.push(l),
      rerun: 'infra-scripts/teardown.sh --yes',
    };
    const inputs = readInputs(root);
    const result = await runPlan(plan === 'deploy' ? deployPlan(c, inputs) : teardownPlan(c, inputs), opts);
    return { result, log: log.join('\n') };
  };

  it(
    'redeploys within 7 days of a teardown: the soft-deleted custom role is undeleted and bound',
    async () => {
      const state = freshState();
      expect((await run(state, 'deploy')).result.ok).toBe(true);
      expect((await run(state, 'teardown')).result.ok).toBe(true);
      expect(softDeleted(readState(state)).map(([k]) => k)).toEqual(['iam roles:ilb_instanceEvents']);
      const again = await run(state, 'deploy');
      expect(again.result.ok ? 'ok' : again.log.slice(-800)).toBe('ok');
      const s = readState(state);
      expect(s.resources['iam roles:ilb_instanceEvents']?.deleted).toBeUndefined();
      expect(calls(state).some((c) => c.args.slice(0, 3).join(' ') === 'iam roles undelete')).toBe(true);
      expect(s.iam[`projects:${project}`]).toEqual(
        expect.arrayContaining([
          {
            role: 'projects/demo-project/roles/ilb_instanceEvents',
            members: ['serviceAccount:ilb-fn-instance-events@demo-project.iam.gserviceaccount.com'],
            // Bound with its condition: Compute rights on the deployment's own resources only.
            condition: expect.objectContaining({ title: 'ilb instanceEvents own resources' }),
          },
        ]),
      );
    },
    LONG,
  );

  it(
    'teardown leaves the egress subnet Cloud Run still holds, and its network, for a later run that removes them',
    async () => {
      const state = freshState({ holdsEgressAddresses: true });
      expect((await run(state, 'deploy')).result.ok).toBe(true);
      const first = await run(state, 'teardown');
      expect(first.result).toMatchObject({
        ok: true,
        left: ['delete subnet ilb-fn-egress (functions egress, 10.10.16.0/26)', 'delete network ilb-net'],
      });
      expect(first.log).toContain(
        "is already being used by 'projects/demo-project/regions/us-central1/addresses/serverless-ipv4-",
      );
      expect(first.log).toContain('rerun later to remove: delete subnet ilb-fn-egress');
      const left = readState(state);
      const held = Object.keys(left.resources).filter((k) => left.resources[k]?.purpose === 'SERVERLESS');
      expect(Object.keys(withoutSoftDeleted(left)).sort()).toEqual(
        ['compute networks:ilb-net', 'compute networks subnets:ilb-fn-egress', ...held].sort(),
      );
      // An hour or two later Cloud Run has released its addresses.
      for (const k of held) delete left.resources[k];
      writeFileSync(path.join(state, 'state.json'), JSON.stringify(left));
      const second = await run(state, 'teardown');
      expect(second.result).toMatchObject({ ok: true });
      expect(second.result.ok && second.result.left).toBeUndefined();
      expect(withoutSoftDeleted(readState(state))).toEqual({});
    },
    LONG,
  );
});

describe('the stand-in gcloud is strict', () => {
  const fake = (args: string[], state: string) =>
    promisify(execFile)(path.join(fakeBin, 'gcloud'), args, {
      env: { ...process.env, FAKE_GCLOUD_STATE: state },
    }).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
  it('fails on a misspelt or unknown flag, a missing value and a missing --project', async () => {
    const state = freshState();
    expect(await fake(['pubsub', 'topics', 'create', 't', '--project', project], state)).toBe(0);
    expect(
      await fake(['pubsub', 'topics', 'create', 't2', '--lables=a=b', '--project', project], state),
    ).toBe(2);
    expect(await fake(['functions', 'deploy', 'f', '--retries', '--project', project], state)).toBe(2);
    expect(await fake(['compute', 'instances', 'create', 'x', '--zone', '--project', project], state)).toBe(
      2,
    );
    expect(await fake(['pubsub', 'topics', 'create', 't3'], state)).toBe(2);
    // An HTTP function takes no retry; a JSON value needs the alternate delimiter.
    const fn = ['functions', 'deploy', 'h', '--region=us-central1', '--project', project];
    expect(await fake([...fn, '--trigger-http', '--retry'], state)).toBe(2);
    expect(await fake([...fn, '--trigger-http', '--set-env-vars=A={"b":1,"c":2}'], state)).toBe(2);
    expect(await fake([...fn, '--trigger-http', '--set-env-vars=^|^A={"b":1,"c":2}|B=3'], state)).toBe(0);
    expect(await fake(['compute', 'networks', 'describe', 'nope', '--project', project], state)).toBe(1);
  });
});

describe('scripts', () => {
  it('pass shellcheck', async () => {
    const files = ['deploy.sh', 'teardown.sh', 'build-images.sh', 'deploy/run.sh'].map((f) =>
      path.join(root, 'infra-scripts', f),
    );
    await promisify(execFile)('shellcheck', [
      '--severity=style',
      '-x',
      ...files,
      path.join(fakeBin, 'gcloud'),
    ]);
  });
});
