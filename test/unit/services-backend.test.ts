import http from 'node:http';
import { Writable } from 'node:stream';

import { createBackendHandler, type BackendReport } from '../../services/backend/app';
import {
  consulAgentFromEnv,
  readAgentSelf,
  type ConsulNodeIdentity,
} from '../../services/lib/consul-identity';
import type { InstanceIdentity } from '../../services/lib/gce-metadata';
import { createGracefulServer, type GracefulServer } from '../../services/lib/graceful-server';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'test', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

const instance: InstanceIdentity = {
  id: '5918277353124567891',
  name: 'backend-1',
  hostname: 'backend-1.internal',
  zone: 'us-central1-a',
  project: 'demo',
  internalIp: '10.0.0.5',
  machineType: 'e2-small',
  tags: ['backend'],
  instanceGroup: 'backend-mig',
};
const consulNode: ConsulNodeIdentity = {
  node: 'backend-1',
  nodeId: 'abc',
  datacenter: 'dc1',
  meta: { role: 'backend' },
};

let servers: GracefulServer[] = [];
async function serve(deps: Partial<Parameters<typeof createBackendHandler>[0]> = {}) {
  const server = createGracefulServer(
    createBackendHandler({
      instance: async () => instance,
      consulNode: async () => consulNode,
      logger,
      ...deps,
    }),
    () => undefined,
  );
  servers.push(server);
  const port = await server.listen('127.0.0.1', 0);
  return { server, url: `http://127.0.0.1:${port}` };
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.shutdown(100)));
  servers = [];
});

describe('backend app', () => {
  it('answers its instance metadata and Consul identity as JSON', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as BackendReport;
    expect(body.instance).toEqual(instance);
    expect(body.consul).toEqual(consulNode);
    expect(Date.parse(body.servedAt)).not.toBeNaN();
  });

  it('still answers when the Consul agent is down, and 503 when metadata is', async () => {
    const noConsul = await serve({ consulNode: () => Promise.reject(new Error('refused')) });
    const body = (await (await fetch(`${noConsul.url}/`)).json()) as BackendReport;
    expect(body.consul).toBeNull();
    expect(body.instance.name).toBe('backend-1');
    const noMetadata = await serve({ instance: () => Promise.reject(new Error('down')) });
    expect((await fetch(`${noMetadata.url}/`)).status).toBe(503);
  });

  it('serves /healthz, 404 elsewhere and answers POST like GET, refuses other methods', async () => {
    const { url } = await serve();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/other`)).status).toBe(404);
    expect((await fetch(`${url}/`, { method: 'PUT' })).status).toBe(405);
    const post = await fetch(`${url}/`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect(post.status).toBe(200);
    expect(((await post.json()) as BackendReport).instance.id).toBe(instance.id);
  });

  it('finishes in-flight requests on shutdown, then refuses connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { server, url } = await serve({
      instance: async () => {
        await gate;
        return instance;
      },
    });
    const inFlight = fetch(`${url}/`);
    await new Promise((r) => setTimeout(r, 100));
    const stopped = server.shutdown(5_000);
    await new Promise((r) => setTimeout(r, 100));
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as BackendReport).instance.id).toBe(instance.id);
    await stopped;
  });
});

describe('readAgentSelf', () => {
  const answering = async (status: number, body: unknown) => {
    const server = http.createServer((req, res) => {
      res.statusCode = req.url === '/v1/agent/self' ? status : 404;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return { server, env: { CONSUL_HTTP_ADDR: `127.0.0.1:${port}` } };
  };

  it('keeps the node identity from /v1/agent/self', async () => {
    const { server, env } = await answering(200, {
      Config: { NodeName: 'n1', NodeID: 'id-1', Datacenter: 'dc1', Extra: 1 },
      Meta: { 'gce-zone': 'z' },
    });
    const consul = consulAgentFromEnv(env);
    await expect(readAgentSelf(consul)).resolves.toEqual({
      node: 'n1',
      nodeId: 'id-1',
      datacenter: 'dc1',
      meta: { 'gce-zone': 'z' },
    });
    consul.close();
    server.close();
  });

  it('rejects an answer without a node name', async () => {
    const { server, env } = await answering(200, { Config: {} });
    const consul = consulAgentFromEnv(env);
    await expect(readAgentSelf(consul)).rejects.toThrow(/unexpected answer/);
    consul.close();
    server.close();
  });
});
