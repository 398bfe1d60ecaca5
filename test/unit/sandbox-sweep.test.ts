import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import { isCatalogRead, startConsulLink } from '../../infra-scripts/local/scenarios/consul-link';
import {
  healthSweepConfig,
  sandboxProject,
  sandboxRegion,
  sandboxZones,
} from '../../infra-scripts/local/scenarios/topology';

test("the sandbox's HEALTH_SWEEP_CONFIG_JSON is valid and watches its groups: regional backend and haproxy, zonal frontend", () => {
  const config = parseHealthSweepConfig(JSON.parse(healthSweepConfig()));
  expect(config.groups.map((g) => [g.key, g.role])).toEqual([
    [`projects/${sandboxProject}/regions/${sandboxRegion}/instanceGroupManagers/backend`, 'backend'],
    [`projects/${sandboxProject}/regions/${sandboxRegion}/instanceGroupManagers/haproxy`, 'haproxy'],
    [`projects/${sandboxProject}/zones/${sandboxZones[0]}/instanceGroupManagers/frontend`, 'frontend'],
  ]);
  expect(config.thresholds).toMatchObject({ absentSweeps: 2, bootGraceMs: 120_000, brokenGraceMs: 60_000 });
  expect(config.repairOrphans).toBe(false);
});

test.each([
  ['GET', '/v1/catalog/nodes', true],
  ['GET', '/v1/health/state/any', true],
  ['PUT', '/v1/catalog/register', false],
  ['GET', '/v1/kv/gce-ilb-orchestrator/health-sweep/bucket', false],
  ['PUT', '/v1/session/create', false],
  ['GET', '/v1/catalogue', false],
])('a degraded link fails %s %s: %s', (method, url, fails) => {
  expect(isCatalogRead(method, url)).toBe(fails);
});

test('a Consul link forwards every request, and with reads failing answers catalog and health reads 503 itself', async () => {
  const seen: string[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-consul-token'] ?? ''}`);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('[]'));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const link = await startConsulLink(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  try {
    const call = (method: string, path: string) =>
      fetch(`${link.url}${path}`, { method, headers: { 'x-consul-token': 't' } }).then((r) => r.status);
    expect(await call('GET', '/v1/catalog/nodes')).toBe(200);
    link.failReads(true);
    expect(link.failing).toBe(true);
    expect(await call('GET', '/v1/catalog/nodes')).toBe(503);
    expect(await call('GET', '/v1/health/state/any')).toBe(503);
    expect(await call('PUT', '/v1/session/create')).toBe(200);
    link.failReads(false);
    expect(await call('GET', '/v1/health/state/any')).toBe(200);
    expect(seen).toEqual([
      'GET /v1/catalog/nodes t',
      'PUT /v1/session/create t',
      'GET /v1/health/state/any t',
    ]);
  } finally {
    await link.stop();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
