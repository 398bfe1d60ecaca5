/**
 * The stand-in API modules against the real gcloud: the deploy's own commands (from the golden dry
 * run of `deploy.sh` and `teardown.sh`) create, read twice, update and delete through each module,
 * and nothing gcloud sent goes unserved. gcloud runs as a child process, never synchronously, since
 * the stand-in answers from this process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { allApiModules, standInProxyEnvironment } from '../rehearsal/apis';
import type { ApiModule } from '../rehearsal/contract';
import { gcloudEnvironment, startStandIn, type StandIn } from '../rehearsal/server';

const project = 'demo-project';
const projectNumber = '123456789012';
const sa = (id: string) => `${id}@${project}.iam.gserviceaccount.com`;
const P = ['--project', project];
const region = '--region=us-central1';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let standIn: StandIn;
let modules: ApiModule[];
let env: Record<string, string>;
let configDir: string;

function gcloud(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('gcloud', args, { env: { ...process.env, ...env }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: stdout.trim(), stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** Runs a command that must succeed; its stdout. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await gcloud(args, stdin);
  if (r.code !== 0) throw new Error(`gcloud ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

const inventory = (name: string) => modules.find((m) => m.name === name)?.inventory() ?? [];

beforeAll(async () => {
  modules = allApiModules({ project, projectNumber });
  standIn = await startStandIn(modules);
  configDir = mkdtempSync(join(tmpdir(), 'rehearsal-gcloud-'));
  const endpoints = Object.fromEntries(modules.map((m) => [m.name, standIn.endpoint(m.name)]));
  env = { ...gcloudEnvironment(configDir, project, endpoints), ...standInProxyEnvironment(standIn) };
});

afterAll(async () => {
  await standIn.stop();
  rmSync(configDir, { recursive: true, force: true });
});

afterEach(() => {
  expect(standIn.journal.filter((e) => e.unserved)).toEqual([]);
});

const describeText = (r: Run) => `${r.code}: ${r.stderr}`;

describe('stand-in APIs under the real gcloud', () => {
  it('iam: service accounts and custom roles, with soft delete and undelete', async () => {
    await Promise.all(
      ['ilb-consul', 'ilb-fn-build', 'ilb-fn-instance-events'].map((id) =>
        ok([
          'iam',
          'service-accounts',
          'create',
          id,
          `--display-name=ilb ${id}`,
          '--description=gce-ilb-orchestrator deployment=ilb',
          ...P,
        ]),
      ),
    );
    await ok([
      'iam',
      'roles',
      'create',
      'ilb_instanceEvents',
      '--title=ilb instanceEvents',
      '--description=gce-ilb-orchestrator deployment=ilb',
      '--permissions=compute.instances.get',
      '--stage=GA',
      ...P,
    ]);
    const [email, again, deleted] = await Promise.all([
      ok(['iam', 'service-accounts', 'describe', sa('ilb-consul'), ...P, '--format=value(email)']),
      gcloud(['iam', 'service-accounts', 'create', 'ilb-consul', ...P]),
      ok(['iam', 'roles', 'describe', 'ilb_instanceEvents', ...P, '--format=value(deleted)']),
    ]);
    expect(email).toBe(sa('ilb-consul'));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/i);
    expect(deleted).toBe('');
    await ok([
      'iam',
      'roles',
      'update',
      'ilb_instanceEvents',
      '--permissions=compute.instances.get,compute.zoneOperations.get',
      ...P,
    ]);
    expect(
      await ok([
        'iam',
        'roles',
        'describe',
        'ilb_instanceEvents',
        ...P,
        '--format=value(includedPermissions)',
      ]),
    ).toBe('compute.instances.get;compute.zoneOperations.get');
    await ok(['iam', 'roles', 'delete', 'ilb_instanceEvents', ...P, '--quiet']);
    expect(
      await ok([
        'iam',
        'roles',
        'describe',
        'ilb_instanceEvents',
        ...P,
        '--format=value(description,deleted)',
      ]),
    ).toBe('gce-ilb-orchestrator deployment=ilb\tTrue');
    expect(inventory('iam').filter((i) => i.kind === 'role')).toEqual([]);
    await ok(['iam', 'roles', 'undelete', 'ilb_instanceEvents', ...P]);
    expect(
      await ok(['iam', 'roles', 'describe', 'ilb_instanceEvents', ...P, '--format=value(deleted)']),
    ).toBe('');
  });

  it('cloudresourcemanager: project number and bindings, checked against IAM', async () => {
    expect(await ok(['projects', 'describe', project, '--format=value(projectNumber)'])).toBe(projectNumber);
    await ok([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-consul')}`,
      '--role=roles/logging.logWriter',
      '--condition=None',
    ]);
    await ok([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-fn-instance-events')}`,
      `--role=projects/${project}/roles/ilb_instanceEvents`,
      '--condition=None',
    ]);
    const policy = JSON.parse(await ok(['projects', 'get-iam-policy', project, ...P, '--format=json'])) as {
      bindings: { role: string; members: string[] }[];
    };
    expect(policy.bindings).toEqual(
      expect.arrayContaining([
        { role: 'roles/logging.logWriter', members: [`serviceAccount:${sa('ilb-consul')}`] },
      ]),
    );
    const ghost = await gcloud([
      'projects',
      'add-iam-policy-binding',
      project,
      `--member=serviceAccount:${sa('ilb-nobody')}`,
      '--role=roles/logging.logWriter',
      '--condition=None',
    ]);
    expect(describeText(ghost)).toMatch(/does not exist/);
  });

  it('secretmanager: secrets, versions by stdin, labels, IAM', async () => {
    const secretIds = [
      'consul-ca-cert',
      'consul-token-fn-instance-events',
      'consul-initial-management-token',
    ];
    await Promise.all(
      secretIds.map((id) =>
        ok([
          'secrets',
          'create',
          id,
          '--replication-policy=automatic',
          '--labels=app=gce-ilb-orchestrator,deployment=ilb',
          ...P,
        ]),
      ),
    );
    await Promise.all(
      secretIds.map((id) =>
        ok(['secrets', 'versions', 'add', id, '--data-file=-', ...P], `value of ${id}\n`),
      ),
    );
    const [listed, access, none] = await Promise.all([
      ok(['secrets', 'versions', 'list', 'consul-ca-cert', ...P, '--limit=1', '--format=value(name)']),
      ok(['secrets', 'versions', 'access', 'latest', '--secret=consul-ca-cert', ...P]),
      ok([
        'secrets',
        'describe',
        'consul-initial-management-token',
        ...P,
        '--format=value(labels.acl_registered)',
      ]),
    ]);
    expect(listed).toBe('1');
    expect(access).toBe('value of consul-ca-cert');
    expect(none).toBe('');
    await ok([
      'secrets',
      'update',
      'consul-initial-management-token',
      '--update-labels=acl_registered=75a1d69621',
      ...P,
    ]);
    await ok([
      'secrets',
      'add-iam-policy-binding',
      'consul-ca-cert',
      `--member=serviceAccount:${sa('ilb-consul')}`,
      '--role=roles/secretmanager.secretAccessor',
      ...P,
    ]);
    const [label, policy] = await Promise.all([
      ok([
        'secrets',
        'describe',
        'consul-initial-management-token',
        ...P,
        '--format=value(labels.acl_registered)',
      ]),
      ok(['secrets', 'get-iam-policy', 'consul-ca-cert', ...P, '--format=json']),
    ]);
    expect(label).toBe('75a1d69621');
    expect(JSON.parse(policy)).toMatchObject({
      bindings: [
        { role: 'roles/secretmanager.secretAccessor', members: [`serviceAccount:${sa('ilb-consul')}`] },
      ],
    });
    expect(inventory('secretmanager')).toHaveLength(3);
  });

  it('pubsub, logging, monitoring, scheduler: topics, hold subscriptions, sink, channel, policy, job', async () => {
    const labels = '--labels=app=gce-ilb-orchestrator,deployment=ilb';
    await Promise.all(
      ['instance-events', 'instance-events-dead-letter', 'scaling-alerts'].map((t) =>
        ok(['pubsub', 'topics', 'create', t, labels, ...P]),
      ),
    );
    const filter =
      'resource.type="gce_instance" AND protoPayload.methodName:"compute.instances." AND (protoPayload.resourceName:"/instances/backend-ilb-")';
    await Promise.all([
      ok([
        'pubsub',
        'subscriptions',
        'create',
        'instance-events-dead-letter-hold',
        '--topic=instance-events-dead-letter',
        '--message-retention-duration=7d',
        labels,
        ...P,
      ]),
      ok([
        'logging',
        'sinks',
        'create',
        'ilb-instance-events',
        `pubsub.googleapis.com/projects/${project}/topics/instance-events`,
        `--log-filter=${filter}`,
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
      ok([
        'beta',
        'monitoring',
        'channels',
        'create',
        '--display-name=ilb scaling-alerts',
        '--type=pubsub',
        `--channel-labels=topic=projects/${project}/topics/scaling-alerts`,
        '--user-labels=app=gce-ilb-orchestrator,deployment=ilb',
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
      ok([
        'scheduler',
        'jobs',
        'create',
        'pubsub',
        'ilb-health-sweep',
        '--location=us-central1',
        '--schedule=*/5 * * * *',
        '--time-zone=Etc/UTC',
        `--topic=projects/${project}/topics/instance-events`,
        '--message-body={}',
        '--description=gce-ilb-orchestrator deployment=ilb',
        ...P,
      ]),
    ]);
    const [writer, channel, job] = await Promise.all([
      ok(['logging', 'sinks', 'describe', 'ilb-instance-events', ...P, '--format=value(writerIdentity)']),
      ok([
        'beta',
        'monitoring',
        'channels',
        'list',
        '--filter=displayName="ilb scaling-alerts"',
        ...P,
        '--format=value(name)',
      ]),
      ok([
        'scheduler',
        'jobs',
        'describe',
        'ilb-health-sweep',
        '--location=us-central1',
        ...P,
        '--format=value(name)',
      ]),
    ]);
    expect(writer).toBe(`serviceAccount:service-${projectNumber}@gcp-sa-logging.iam.gserviceaccount.com`);
    expect(channel).toMatch(new RegExp(`^projects/${project}/notificationChannels/\\d+$`));
    expect(job).toBe(`projects/${project}/locations/us-central1/jobs/ilb-health-sweep`);
    const policy = {
      displayName: 'ilb backend CPU high',
      combiner: 'OR',
      conditions: [
        {
          displayName: 'backend mean CPU above 0.8',
          conditionThreshold: {
            filter:
              'resource.type = "gce_instance" AND metric.type = "compute.googleapis.com/instance/cpu/utilization"',
            aggregations: [
              { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_MEAN' },
            ],
            comparison: 'COMPARISON_GT',
            thresholdValue: 0.8,
            duration: '300s',
          },
        },
      ],
      alertStrategy: { notificationPrompts: ['OPENED', 'CLOSED'], autoClose: '1800s' },
      notificationChannels: [channel],
      userLabels: { app: 'gce-ilb-orchestrator', deployment: 'ilb' },
    };
    await Promise.all([
      ok(['alpha', 'monitoring', 'policies', 'create', `--policy=${JSON.stringify(policy)}`, ...P]),
      ok([
        'pubsub',
        'topics',
        'add-iam-policy-binding',
        'instance-events',
        `--member=${writer}`,
        '--role=roles/pubsub.publisher',
        ...P,
      ]),
    ]);
    const [policyName, bad] = await Promise.all([
      ok([
        'alpha',
        'monitoring',
        'policies',
        'list',
        '--filter=displayName="ilb backend CPU high"',
        ...P,
        '--format=value(name)',
      ]),
      gcloud([
        'alpha',
        'monitoring',
        'policies',
        'create',
        `--policy=${JSON.stringify({ ...policy, conditions: [{ ...policy.conditions[0], conditionThreshold: { ...policy.conditions[0]?.conditionThreshold, aggregations: [{ crossSeriesReducer: 'REDUCE_MEAN' }] } }] })}`,
        ...P,
      ]),
    ]);
    expect(policyName).toMatch(/^projects\/demo-project\/alertPolicies\/\d+$/);
    expect(describeText(bad)).toMatch(/crossSeriesReducer needs alignmentPeriod/);
    expect(
      inventory('monitoring')
        .map((i) => i.kind)
        .sort(),
    ).toEqual(['alertPolicy', 'notificationChannel']);
  });
});
