import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createConsulClient, PermanentError, TransientError } from '../../shared/consul';
import { toolPath } from '../harness';

/**
 * The Consul layer's own guarantees, against misbehaving HTTP peers Consul cannot be made to
 * imitate on demand: slow, flaky, refusing, oversized, and a TLS peer.
 */
describe('Consul layer: deadlines, bounded retries, size cap, TLS, token', () => {
  const settings = { timeoutMs: 300, retries: 2 };
  const servers: { close(cb: () => void): void }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });
  const listen = async (server: http.Server | https.Server | net.Server, scheme = 'http') => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `${scheme}://127.0.0.1:${(server.address() as { port: number }).port}`;
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  };
  const kvAnswer = [{ Key: 'x', Value: Buffer.from('v').toString('base64'), ModifyIndex: 7 }];

  it('gives up on a peer that never answers after its retries, as a transient error', async () => {
    let connections = 0;
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((socket) => {
      connections++;
      sockets.push(socket);
    });
    const consul = createConsulClient({ ...settings, baseUrl: await listen(blackHole) });
    const started = performance.now();
    const error = await consul.catalog.node('x').catch((e: unknown) => e);
    sockets.forEach((s) => s.destroy());
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/timed out after 300 ms/);
    expect(connections).toBe(3);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('keeps to the overall deadline whatever the retries allow', async () => {
    let connections = 0;
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((socket) => {
      connections++;
      sockets.push(socket);
    });
    const baseUrl = await listen(blackHole);
    const consul = createConsulClient({ baseUrl, timeoutMs: 300, retries: 10, deadlineMs: 700 });
    const started = performance.now();
    await expect(consul.kv.get('x')).rejects.toBeInstanceOf(TransientError);
    sockets.forEach((s) => s.destroy());
    expect(performance.now() - started).toBeLessThan(1200);
    expect(connections).toBeLessThanOrEqual(3);
  });

  it('retries a 5xx and succeeds when the peer recovers', async () => {
    let calls = 0;
    const flaky = http.createServer((_req, res) => {
      calls++;
      if (calls < 3) {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain');
        res.end('No cluster leader');
        return;
      }
      json(res, 200, kvAnswer);
    });
    const consul = createConsulClient({ ...settings, baseUrl: await listen(flaky) });
    await expect(consul.kv.get('x')).resolves.toEqual({ key: 'x', value: 'v', modifyIndex: 7 });
    expect(calls).toBe(3);
  });

  it('does not retry what a retry cannot fix (ACL denied) and marks it permanent, without the token', async () => {
    let calls = 0;
    const denying = http.createServer((_req, res) => {
      calls++;
      res.statusCode = 403;
      res.setHeader('content-type', 'text/plain');
      res.end('Permission denied: token lacks node:write');
    });
    const consul = createConsulClient({ ...settings, baseUrl: await listen(denying), token: 'secret-token' });
    const error = await consul.catalog.deleteNodeCas('n', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ transient: false, status: 403 });
    expect((error as Error).message).toMatch(/Permission denied/);
    expect((error as Error).message).not.toContain('secret-token');
    expect(calls).toBe(1);
  });

  it('refuses an answer larger than the cap', async () => {
    const huge = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify([{ Key: 'x', Value: 'A'.repeat(256 * 1024), ModifyIndex: 1 }]));
    });
    const consul = createConsulClient({
      ...settings,
      baseUrl: await listen(huge),
      maxResponseBytes: 64 * 1024,
    });
    const error = await consul.kv.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as Error).message).toMatch(/larger than 65536 bytes/);
  });

  it('sends the token as X-Consul-Token, never in the URL', async () => {
    let seen: http.IncomingHttpHeaders = {};
    let url = '';
    const echo = http.createServer((req, res) => {
      seen = req.headers;
      url = req.url ?? '';
      json(res, 200, {});
    });
    const consul = createConsulClient({ ...settings, baseUrl: await listen(echo), token: 'secret-token' });
    await consul.agent.checks();
    expect(seen['x-consul-token']).toBe('secret-token');
    expect(url).toBe('/v1/agent/checks');
    await consul.agent.forceLeave('node-1').catch(() => undefined);
    expect(url).toBe('/v1/agent/force-leave/node-1?prune=1');
    expect(seen['x-consul-token']).toBe('secret-token');
  });

  describe('over HTTPS', () => {
    let dir: string;
    let tls: { ca: string; cert: string; key: string };
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'consul-layer-tls-'));
      const run = promisify(execFile);
      await run(toolPath('consul'), ['tls', 'ca', 'create'], { cwd: dir });
      await run(toolPath('consul'), ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: dir });
      tls = {
        ca: await readFile(path.join(dir, 'consul-agent-ca.pem'), 'utf8'),
        cert: await readFile(path.join(dir, 'dc1-server-consul-0.pem'), 'utf8'),
        key: await readFile(path.join(dir, 'dc1-server-consul-0-key.pem'), 'utf8'),
      };
    });
    afterAll(async () => rm(dir, { recursive: true, force: true }));

    it('verifies the peer with the configured CA, and refuses it without (permanently)', async () => {
      const server = https.createServer({ cert: tls.cert, key: tls.key }, (_req, res) =>
        json(res, 200, kvAnswer),
      );
      const baseUrl = await listen(server, 'https');
      const trusting = createConsulClient({
        ...settings,
        baseUrl,
        tls: { ca: tls.ca, rejectUnauthorized: true, serverName: 'server.dc1.consul' },
      });
      await expect(trusting.kv.get('x')).resolves.toMatchObject({ value: 'v' });
      trusting.close();
      const stranger = createConsulClient({ ...settings, baseUrl, tls: { rejectUnauthorized: true } });
      await expect(stranger.kv.get('x')).rejects.toBeInstanceOf(PermanentError);
    });
  });
});
