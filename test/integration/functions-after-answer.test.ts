import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { nodeMetaKeys } from '../../shared/contract';
import {
  freePort,
  repoRoot,
  startConsulCluster,
  startProcess,
  type ConsulAgent,
  type ConsulCluster,
} from '../harness';
import { sweepToken } from './health-sweep.support';
import { functionToken, registerNode } from './instance-events.support';

/**
 * No work after the answer: once a function has answered a delivery, nothing it started may still
 * fail. The Functions Framework reports an error thrown after the answer as "Exception from a
 * finished function" (and a rejection nobody handles crashes the instance), so both are looked
 * for in the output of the real framework, serving the built functions, with a Compute endpoint
 * that fails every call.
 */
const root = repoRoot();
const entry = path.join(root, 'dist', 'functions', 'index.js');
const framework = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const project = 'ilb-after-answer';
const zone = 'us-central1-a';
const afterAnswer = /Exception from a finished function|Unhandled rejection|Uncaught exception/;

/**
 * What the framework printed besides the functions' JSON log lines and its banner: a crash report
 * (the stack of an error nobody handled) or one of its own complaints. A function that asks for a
 * redelivery throws a TransientError, which the framework prints with its stack: that one is the
 * answer itself, not work after it.
 */
function strayLines(output: string): string[] {
  const stray: string[] = [];
  let answer = false;
  for (const line of output.split('\n')) {
    if (line.trim() === '' || line.startsWith('{')) continue;
    if (/^(Serving function\.\.\.|Function: |Signature type: |URL: )/.test(line)) continue;
    if (/^\s+at /.test(line) && answer) continue;
    answer = line.startsWith('TransientError: ');
    if (!answer) stray.push(line);
  }
  return stray;
}

let cluster: ConsulCluster;
let server: ConsulAgent;
let closedPort: number;

beforeAll(async () => {
  // Always from the current sources: this test is about what the built code does.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
  cluster = await startConsulCluster({ servers: 1 });
  server = cluster.servers[0] as ConsulAgent;
  // Taken and released: nothing listens there, so every Compute call is refused.
  closedPort = await freePort('127.0.0.1');
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

const identity = (id: string, group: string) => ({
  [nodeMetaKeys.instanceId]: id,
  [nodeMetaKeys.zone]: zone,
  [nodeMetaKeys.project]: project,
  [nodeMetaKeys.group]: group,
  [nodeMetaKeys.role]: 'backend',
});

/** Starts the framework on one target, posts `body` as a Pub/Sub CloudEvent, returns the output after `settleMs`. */
async function deliver(
  target: string,
  env: Record<string, string>,
  body: unknown,
  settleMs = 4000,
): Promise<{ status: number; output: string }> {
  const port = await freePort();
  const fn = await startProcess({
    name: `functions-framework ${target}`,
    command: process.execPath,
    args: [framework, `--target=${target}`, `--source=${entry}`, `--port=${port}`],
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none', GOOGLE_CLOUD_PROJECT: project, ...env },
    readyTimeoutMs: 30_000,
    ready: async () =>
      (await fetch(`http://127.0.0.1:${port}/`, { method: 'GET' }).catch(() => undefined)) !== undefined,
  });
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-id': `${target}-1`,
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': `//pubsub.googleapis.com/projects/${project}/topics/${target}`,
      },
      body: JSON.stringify(body),
    });
    await res.text();
    // Whatever was left running fails within the client's timeouts of a refused connection.
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return { status: res.status, output: fn.output() };
  } finally {
    await fn.stop();
  }
}

const message = (data: unknown) => ({
  message: { data: Buffer.from(JSON.stringify(data)).toString('base64'), messageId: 'm-1' },
  subscription: `projects/${project}/subscriptions/s`,
});

describe.each([
  ['https, no credentials', () => `https://127.0.0.1:${closedPort}`],
  ['http emulator address', () => `http://127.0.0.1:${closedPort}`],
])('with a Compute endpoint that fails (%s)', (_label, endpoint) => {
  test('healthSweep answers and leaves nothing running that fails afterwards', async () => {
    const token = await sweepToken(server).catch(() => sweepTokenAgain());
    // Two groups, and a node of each that no (unreadable) group lists: group reads and lookups.
    for (const [name, id, group] of [
      ['backend-aa1', '9300000000000000001', 'backend-a'],
      ['backend-bb1', '9300000000000000002', 'backend-b'],
    ] as const) {
      await registerNode(server, name, identity(id, group));
    }
    const { status, output } = await deliver(
      'healthSweep',
      {
        CONSUL_HTTP_ADDR: server.httpAddr,
        CONSUL_HTTP_TOKEN: token,
        COMPUTE_API_ENDPOINT: endpoint(),
        HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
          groups: [
            { project, zone, name: 'backend-a', role: 'backend' },
            { project, zone, name: 'backend-b', role: 'backend' },
          ],
        }),
      },
      { message: { data: Buffer.from('tick').toString('base64'), messageId: 'tick-1' } },
    );
    expect(output).not.toMatch(afterAnswer);
    expect(strayLines(output)).toEqual([]);
    expect(output).toMatch(/health sweep done/);
    expect(status).toBeLessThan(300);
  }, 90_000);

  test('instanceEvents answers and leaves nothing running that fails afterwards', async () => {
    const token = await functionToken(server).catch(() => functionTokenAgain());
    // A node without identity metadata: a drain asks Compute who it is.
    await registerNode(server, 'backend-cc1', {});
    const entryOf = (insertId: string) => ({
      insertId,
      logName: `projects/${project}/logs/cloudaudit.googleapis.com%2Factivity`,
      timestamp: new Date().toISOString(),
      operation: { id: `op-${insertId}`, producer: 'compute.googleapis.com', first: true },
      resource: {
        type: 'gce_instance',
        labels: { project_id: project, zone, instance_id: '9300000000000000003' },
      },
      protoPayload: {
        methodName: 'v1.compute.instances.delete',
        resourceName: `projects/${project}/zones/${zone}/instances/backend-cc1`,
      },
    });
    const { status, output } = await deliver(
      'instanceEvents',
      { CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: token, COMPUTE_API_ENDPOINT: endpoint() },
      message(entryOf(`after-answer-${Date.now()}`)),
    );
    // Whatever the answer (a redelivery is fine), nothing may fail after it.
    expect(status).toBeGreaterThanOrEqual(200);
    expect(output).not.toMatch(afterAnswer);
    expect(strayLines(output)).toEqual([]);
    // Compute was asked, and its failure is the reason of the retry.
    expect(output).toMatch(/"decision":"retry"/);
  }, 90_000);
});

// The policies exist after the first case: a second token of the same policy.
const sweepTokenAgain = () => server.consul.acl.createToken({ policies: ['health-sweep'] });
const functionTokenAgain = () => server.consul.acl.createToken({ policies: ['instance-events'] });
