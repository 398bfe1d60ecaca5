import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
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
