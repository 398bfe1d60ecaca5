import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { pubsubFunction } from '../../functions/pubsub-function';
import { TransientError } from '../../shared/errors';
import { createLogger } from '../../shared/logging';
import { messagePublishedType } from '../../shared/pubsub';
import { freePort, node22Path, repoRoot, startProcess, waitFor } from '../harness';

// The functions deploy on nodejs22 and are developed on Node 20: the built entry must serve on both.
const root = repoRoot();
const entry = path.join(root, 'dist', 'functions', 'index.js');
const framework = path.join(
  root,
  'node_modules',
  '@google-cloud',
  'functions-framework',
  'build',
  'src',
  'main.js',
);

beforeAll(() => {
  if (!existsSync(entry)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
});

describe.each([
  ['Node 20 (this machine)', process.execPath],
  ['Node 22 (deploy runtime)', node22Path()],
])('the built functions on %s', (_label, node) => {
  it('serve instanceEvents in the Functions Framework and acknowledge a malformed event', async () => {
    const port = await freePort();
    const server = await startProcess({
      name: 'functions-framework',
      command: node,
      args: [framework, '--target=instanceEvents', `--source=${entry}`, `--port=${port}`],
      env: { ...process.env, CONSUL_HTTP_ADDR: '127.0.0.1:1', METADATA_SERVER_DETECTION: 'none' },
      readyTimeoutMs: 20_000,
      ready: async () =>
        (await fetch(`http://127.0.0.1:${port}/`, { method: 'GET' }).catch(() => undefined)) !== undefined,
    });
    try {
      const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
      expect(version).toMatch(node === process.execPath ? /^v2\d\./ : /^v22\./);
      // Not a LogEntry: acknowledged (2xx) with a log line, so Pub/Sub does not redeliver it forever.
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'ce-id': 'malformed-1',
          'ce-specversion': '1.0',
          'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
          'ce-source': '//pubsub.googleapis.com/projects/demo/topics/instance-events',
        },
        body: JSON.stringify({
          message: { data: Buffer.from('not json').toString('base64'), messageId: 'm1' },
          subscription: 'projects/demo/subscriptions/instance-events',
        }),
      });
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      await waitFor('the log line about the malformed event', async () =>
        /"severity":"(WARNING|ERROR)"/.test(server.output()),
      );
    } finally {
      await server.stop();
    }
  });
});

/** The built functions started as Cloud Run functions starts one: only the target's environment. */
function startTarget(target: { flag?: string; env?: string }, env: NodeJS.ProcessEnv) {
  return startProcess({
    name: `functions-framework ${target.flag ?? target.env}`,
    command: process.execPath,
    args: [
      framework,
      ...(target.flag ? [`--target=${target.flag}`] : []),
      `--source=${entry}`,
      `--port=${env.PORT}`,
    ],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      METADATA_SERVER_DETECTION: 'none',
      CONSUL_HTTP_ADDR: '127.0.0.1:1',
      ...(target.env ? { FUNCTION_TARGET: target.env } : {}),
      ...env,
    },
  });
}

const jsonLines = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const sweepDocument = JSON.stringify({
  groups: [{ project: 'ilb-demo', zone: 'us-central1-a', name: 'backend-a', role: 'backend' }],
});

describe('a function whose configuration is invalid fails at cold start', () => {
  it('scalingAlerts without rules: the process exits non-zero with one log line naming what is missing', async () => {
    const proc = await startTarget({ flag: 'scalingAlerts' }, { PORT: String(await freePort()) });
    const status = await proc.exited;
    expect(status.code).not.toBe(0);
    await waitFor('the log line', async () => proc.output().includes('\n'));
    const lines = jsonLines(proc.output());
    expect(lines).toEqual([
      expect.objectContaining({
        severity: 'CRITICAL',
        decision: 'failed',
        target: 'scalingAlerts',
        reason: 'exactly one of SCALING_RULES_FILE and SCALING_RULES_JSON must be set',
      }),
    ]);
  });

  it.each([
    ['healthSweep', { HEALTH_SWEEP_CONFIG_JSON: '{"groups":[]}' }, /HEALTH_SWEEP_CONFIG_JSON: invalid/],
    [
      'healthSweepHttp',
      { HEALTH_SWEEP_CONFIG_JSON: sweepDocument, HEALTH_SWEEP_CONFIG_FILE: '/x.json' },
      /exactly one of HEALTH_SWEEP_CONFIG_FILE and HEALTH_SWEEP_CONFIG_JSON/,
    ],
    ['instanceEvents', { CONSUL_HTTP_ADDR: 'ftp://consul:8500' }, /CONSUL_HTTP_ADDR/],
  ])('%s named by FUNCTION_TARGET, its configuration wrong: exits', async (target, env, reason) => {
    const proc = await startTarget({ env: target }, { PORT: String(await freePort()), ...env });
    expect((await proc.exited).code).not.toBe(0);
    await waitFor('the log line', async () => proc.output().includes('\n'));
    const [line, ...more] = jsonLines(proc.output());
    expect(more).toEqual([]);
    expect(line).toMatchObject({ severity: 'CRITICAL', decision: 'failed', target });
    expect(String(line?.reason)).toMatch(reason);
  });

  it('healthSweepHttp with good configuration serves, built at load; the other targets are not built', async () => {
    const port = await freePort();
    // No rules: scalingAlerts, exported from the same module, would refuse to start.
    const proc = await startTarget(
      { env: 'healthSweepHttp' },
      { PORT: String(port), HEALTH_SWEEP_CONFIG_JSON: sweepDocument },
    );
    try {
      await waitFor('the ready line', async () => /healthSweep ready/.test(proc.output()));
      // The line is written at load, before the framework listens: the first answer, once it does.
      let status = 0;
      await waitFor('the listener', async () => {
        status = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' }).then(
          (res) => res.status,
          () => 0,
        );
        return status !== 0;
      });
      expect(status).toBe(401);
      expect(proc.running).toBe(true);
    } finally {
      await proc.stop();
    }
  });
});

describe('the Pub/Sub shell', () => {
  function shell(handler: (data: unknown) => Promise<unknown>, ackOnFailure?: boolean) {
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger({
      name: 'shell',
      destination: new Writable({
        write(chunk: Buffer, _e, done) {
          logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }),
    });
    let builds = 0;
    const fn = pubsubFunction(
      'shellTest',
      logger,
      () => {
        builds += 1;
        return handler;
      },
      { ackOnFailure },
    );
    return { fn, logs, builds: () => builds };
  }
  const event = (type = messagePublishedType) =>
    ({ id: 'e-1', type, specversion: '1.0', source: 'test', data: { message: {} } }) as CloudEvent<unknown>;

  it('builds the handler once, on first use without a target, and awaits it before answering', async () => {
    let done = false;
    const s = shell(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      done = true;
    });
    expect(s.builds()).toBe(0);
    await s.fn(event());
    expect(done).toBe(true);
    await s.fn(event());
    expect(s.builds()).toBe(1);
  });

  it('acknowledges another event type with an ignored line, without building', async () => {
    const s = shell(() => Promise.reject(new Error('not reached')));
    await expect(s.fn(event('google.cloud.storage.object.v1.finalized'))).resolves.toBeUndefined();
    expect(s.builds()).toBe(0);
    expect(s.logs).toEqual([expect.objectContaining({ decision: 'ignored', eventId: 'e-1' })]);
  });

  it('a failure is thrown for a redelivery (retry), or acknowledged with ackOnFailure (failed)', async () => {
    const retried = shell(() => Promise.reject(new Error('unreachable')));
    await expect(retried.fn(event())).rejects.toBeInstanceOf(TransientError);
    expect(retried.logs).toEqual([
      expect.objectContaining({ decision: 'retry', reason: 'unreachable', severity: 'ERROR' }),
    ]);
    const acked = shell(() => Promise.reject(new Error('unreachable')), true);
    await expect(acked.fn(event())).resolves.toBeUndefined();
    expect(acked.logs).toEqual([
      expect.objectContaining({ decision: 'failed', reason: 'unreachable', severity: 'ERROR' }),
    ]);
  });
});
