import http from 'node:http';
import net from 'node:net';
import { ConsulError, createTransport } from '../../shared/consul/transport';

/** Misbehaving HTTP peers Consul cannot be made to imitate on demand: slow, flaky, refusing. */
describe('Consul transport: timeouts and bounded retries', () => {
  const settings = { tls: { rejectUnauthorized: true }, timeoutMs: 300, retries: 2 };
  const servers: { close(cb: () => void): void }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });
  const listen = async (server: http.Server | net.Server) => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  };

  it('gives up on a peer that never answers after retries, as a transient error', async () => {
    let connections = 0;
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((socket) => {
      connections++;
      sockets.push(socket);
    });
    const baseUrl = await listen(blackHole);
    const started = performance.now();
    const error = await createTransport({ ...settings, baseUrl })
      .request('GET', '/v1/catalog/node/x')
      .catch((e: unknown) => e);
    sockets.forEach((s) => s.destroy());
    expect(error).toBeInstanceOf(ConsulError);
    expect(error).toMatchObject({
      transient: true,
      message: expect.stringMatching(/timed out after 300 ms/),
    });
    expect(connections).toBe(3);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('retries a 5xx and succeeds when the peer recovers', async () => {
    let calls = 0;
    const flaky = http.createServer((_req, res) => {
      calls++;
      res.statusCode = calls < 3 ? 503 : 200;
      res.end(calls < 3 ? 'No cluster leader' : 'true');
    });
    const transport = createTransport({ ...settings, baseUrl: await listen(flaky) });
    await expect(transport.request('GET', '/v1/kv/x')).resolves.toEqual({ status: 200, body: 'true' });
    expect(calls).toBe(3);
  });

  it('does not retry what a retry cannot fix (ACL denied) and marks it permanent', async () => {
    let calls = 0;
    const denying = http.createServer((_req, res) => {
      calls++;
      res.statusCode = 403;
      res.end('Permission denied: token lacks node:write');
    });
    const transport = createTransport({ ...settings, baseUrl: await listen(denying), token: 'secret-token' });
    const error = (await transport.request('PUT', '/v1/txn').catch((e: unknown) => e)) as ConsulError;
    expect(error).toMatchObject({ transient: false, status: 403 });
    expect(error.message).not.toContain('secret-token');
    expect(calls).toBe(1);
  });

  it('sends the token as X-Consul-Token, never in the URL', async () => {
    let seen: http.IncomingHttpHeaders = {};
    let url = '';
    const echo = http.createServer((req, res) => {
      seen = req.headers;
      url = req.url ?? '';
      res.end('[]');
    });
    const transport = createTransport({ ...settings, baseUrl: await listen(echo), token: 'secret-token' });
    await transport.request('GET', '/v1/agent/checks', { query: { prune: true, cas: 0 } });
    expect(seen['x-consul-token']).toBe('secret-token');
    expect(url).toBe('/v1/agent/checks?prune=&cas=0');
  });
});
