import { Writable } from 'node:stream';

import {
  createFrontendHandler,
  escapeHtml,
  fetchThroughHaproxy,
  haproxyNames,
  renderPage,
  type FrontendDeps,
  type UpstreamResponse,
} from '../../services/frontend/app';
import {
  provenResolve,
  selectAddresses,
  skipLogger,
  type SkippedAddress,
} from '../../services/frontend/proven';
import { fetchUpstream } from '../../services/frontend/upstream';
import { parseCidrs } from '../../services/lib/proven-members';
import { createGracefulServer, type GracefulServer } from '../../services/lib/graceful-server';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'test', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

const backendBody = (name: string) =>
  JSON.stringify({
    instance: { id: '1', name, zone: 'us-central1-a', internalIp: '10.0.0.9', machineType: 'e2-small' },
    consul: { node: name, datacenter: 'dc1' },
  });

function deps(overrides: Partial<FrontendDeps>): FrontendDeps {
  let t = 0;
  return {
    zone: async () => 'us-central1-a',
    resolve: async () => [],
    fetchUpstream: async () => ({
      status: 200,
      body: backendBody('b1'),
      haproxyNode: 'hp1',
      haproxyServer: 'l1',
    }),
    now: () => (t += 5),
    logger,
    ...overrides,
  };
}

describe('frontend', () => {
  it('prefers the zone name and falls back to the global one', async () => {
    expect(haproxyNames('z1')).toEqual([
      'z1.haproxy-internal.service.consul',
      'haproxy-internal.service.consul',
    ]);
    expect(haproxyNames(undefined)).toEqual(['haproxy-internal.service.consul']);
    const asked: string[] = [];
    const outcome = await fetchThroughHaproxy(
      deps({
        resolve: async (name) => {
          asked.push(name);
          if (name.startsWith('us-central1-a.')) throw new Error('ENOTFOUND');
          return ['10.1.1.1'];
        },
      }),
    );
    expect(asked).toEqual([
      'us-central1-a.haproxy-internal.service.consul',
      'haproxy-internal.service.consul',
    ]);
    expect(outcome).toMatchObject({
      ok: true,
      backend: { name: 'b1' },
      haproxy: { address: '10.1.1.1', node: 'hp1', server: 'l1', name: 'haproxy-internal.service.consul' },
    });
  });

  it('tries the next HAProxy when one fails and reports every failure', async () => {
    const calls: string[] = [];
    const ok = await fetchThroughHaproxy(
      deps({
        resolve: async () => ['10.0.0.1', '10.0.0.2'],
        fetchUpstream: async (address): Promise<UpstreamResponse> => {
          calls.push(address);
          if (calls.length === 1) throw new Error('ECONNREFUSED');
          return { status: 200, body: backendBody('b2'), haproxyNode: undefined, haproxyServer: undefined };
        },
      }),
    );
    expect(calls).toHaveLength(2);
    expect(ok.ok).toBe(true);
    const bad = await fetchThroughHaproxy(
      deps({
        resolve: async () => ['10.0.0.1'],
        fetchUpstream: async () => ({
          status: 503,
          body: '<html>',
          haproxyNode: 'hp',
          haproxyServer: undefined,
        }),
      }),
    );
    expect(bad).toMatchObject({ ok: false, reason: 'HAProxy 10.0.0.1 answered HTTP 503' });
    const junk = await fetchThroughHaproxy(
      deps({
        resolve: async () => ['10.0.0.1'],
        fetchUpstream: async () => ({
          status: 200,
          body: '{"nope":1}',
          haproxyNode: 'hp',
          haproxyServer: undefined,
        }),
      }),
    );
    expect(junk.ok).toBe(false);
  });

  it('moves a POST to the next HAProxy only when the connection was refused', async () => {
    const refusedOnce = (calls: string[]) =>
      deps({
        resolve: async () => ['10.0.0.1', '10.0.0.2'],
        fetchUpstream: async (address, _port, method): Promise<UpstreamResponse> => {
          calls.push(`${method} ${address}`);
          if (calls.length === 1)
            throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          return { status: 200, body: backendBody('b2'), haproxyNode: undefined, haproxyServer: undefined };
        },
      });
    const calls: string[] = [];
    expect((await fetchThroughHaproxy(refusedOnce(calls), 'POST')).ok).toBe(true);
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['POST', 'POST']);
    for (const failure of [
      () => Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })),
      async (): Promise<UpstreamResponse> => ({
        status: 503,
        body: '',
        haproxyNode: undefined,
        haproxyServer: undefined,
      }),
    ]) {
      let n = 0;
      const outcome = await fetchThroughHaproxy(
        deps({ resolve: async () => ['10.0.0.1', '10.0.0.2'], fetchUpstream: () => (n++, failure()) }),
        'POST',
      );
      expect(outcome.ok).toBe(false);
      expect(n).toBe(1);
    }
  });

  it('renders a 502 page when nothing resolves, escaping what it shows', async () => {
    const server = createGracefulServer(createFrontendHandler(deps({})), () => undefined);
    const port = await server.listen('127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(502);
      expect(await res.text()).toContain('Backend tier unreachable');
      const json = await fetch(`http://127.0.0.1:${port}/?format=json`);
      expect(json.status).toBe(502);
      expect(await json.json()).toEqual({
        ok: false,
        reason: 'backend tier unreachable',
        attempts: 0,
        latencyMs: 5,
      });
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x' })).status).toBe(502);
      expect((await fetch(`http://127.0.0.1:${port}/`, { method: 'PUT' })).status).toBe(405);
    } finally {
      await server.shutdown(100);
    }
    expect(escapeHtml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    const page = renderPage({ ok: false, reason: '<script>', tried: [], latencyMs: 3 });
    expect(page).not.toContain('<script>');
  });
});

describe('frontend: what the public page prints', () => {
  it('names the backend and its zone, never its instance id nor an internal address', async () => {
    const handler = createFrontendHandler(deps({ resolve: async () => ['10.1.1.1'] }));
    const server = createGracefulServer(handler, () => undefined);
    const port = await server.listen('127.0.0.1', 0);
    try {
      const html = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      const json = await (await fetch(`http://127.0.0.1:${port}/?format=json`)).json();
      expect(json).toEqual({
        ok: true,
        backend: { name: 'b1', zone: 'us-central1-a' },
        haproxy: { name: 'us-central1-a.haproxy-internal.service.consul', node: 'hp1', server: 'l1' },
        latencyMs: expect.any(Number),
      });
      expect(html).toContain('b1');
      for (const secret of ['10.0.0.9', '10.1.1.1', 'Instance id']) {
        expect(html).not.toContain(secret);
        expect(JSON.stringify(json)).not.toContain(secret);
      }
      expect(html).not.toMatch(/<td>1<\/td>/);
    } finally {
      await server.shutdown(100);
    }
  });

  it('tells a failure without the addresses it tried', () => {
    const page = renderPage({
      ok: false,
      reason: 'HAProxy 10.1.1.1 answered HTTP 503',
      tried: ['x -> 10.1.1.1'],
      latencyMs: 3,
    });
    expect(page).not.toContain('10.1.1.1');
    expect(page).toContain('backend tier unreachable');
  });
});

describe('fetchUpstream over real HTTP', () => {
  let upstream: GracefulServer;
  let port: number;
  beforeAll(async () => {
    upstream = createGracefulServer(
      async (_req, res) => {
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'X-ILB-HAProxy': 'hp-7',
          'X-ILB-Server': 'b3',
        });
        res.end(backendBody('b9'));
      },
      () => undefined,
    );
    port = await upstream.listen('127.0.0.1', 0);
  });
  afterAll(() => upstream.shutdown(100));

  it('returns status, body and the HAProxy headers; a refused connection rejects', async () => {
    const res = await fetchUpstream('127.0.0.1', port);
    expect(res).toMatchObject({ status: 200, haproxyNode: 'hp-7', haproxyServer: 'b3' });
    expect(JSON.parse(res.body)).toMatchObject({ instance: { name: 'b9' } });
    await expect(fetchUpstream('127.0.0.1', 1)).rejects.toThrow();
  });

  it('renders the page for a real answer', async () => {
    const handler = createFrontendHandler(
      deps({ resolve: async () => ['127.0.0.1'], fetchUpstream: (a) => fetchUpstream(a, port) }),
    );
    const server = createGracefulServer(handler, () => undefined);
    const fport = await server.listen('127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${fport}/`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('Served by b9');
      expect(html).toContain('<td>hp-7</td>');
      expect(html).not.toContain('127.0.0.1');
    } finally {
      await server.shutdown(100);
    }
  });
});

describe('frontend: proven HAProxy addresses', () => {
  const policy = {
    cidrs: parseCidrs('10.0.2.0/24'),
    members: new Set(['10.0.2.5', '10.0.2.6', '10.0.9.9']),
  };

  it('uses only member addresses inside the subnets, each once, in the answer order', () => {
    const answers = ['10.0.2.6', '10.0.9.9', '10.0.2.7', '10.0.2.6', '10.0.2.5', '10.0.2.6'];
    expect(selectAddresses(answers, policy)).toEqual({
      use: ['10.0.2.6', '10.0.2.5'],
      skipped: [
        { address: '10.0.9.9', reason: 'outside-subnet' },
        { address: '10.0.2.7', reason: 'not-a-member' },
        { address: '10.0.2.6', reason: 'duplicate' },
        { address: '10.0.2.6', reason: 'duplicate' },
      ],
    });
    // Without configured subnets, membership still decides.
    expect(selectAddresses(['10.0.9.9', '10.0.9.8'], { ...policy, cidrs: null }).use).toEqual(['10.0.9.9']);
  });

  it('resolves through the policy and reports what it left out', async () => {
    const reports: [string, SkippedAddress[]][] = [];
    const resolve = provenResolve(
      async () => ['10.0.2.7', '10.0.2.5', '10.0.2.5'],
      async () => policy,
      (name, skipped) => reports.push([name, [...skipped]]),
    );
    expect(await resolve('haproxy-internal.service.consul')).toEqual(['10.0.2.5']);
    expect(reports).toEqual([
      [
        'haproxy-internal.service.consul',
        [
          { address: '10.0.2.7', reason: 'not-a-member' },
          { address: '10.0.2.5', reason: 'duplicate' },
        ],
      ],
    ]);
  });

  it('finds no HAProxy (the page then answers 502) when no proven address is left, and tries none', async () => {
    const tried: string[] = [];
    const outcome = await fetchThroughHaproxy(
      deps({
        resolve: provenResolve(
          async () => ['10.0.9.9', '10.0.2.7'],
          async () => policy,
          () => undefined,
        ),
        fetchUpstream: async (address) => {
          tried.push(address);
          throw new Error('must not be reached');
        },
      }),
    );
    expect(tried).toEqual([]);
    expect(outcome).toMatchObject({ ok: false, reason: 'no HAProxy found in Consul DNS', tried: [] });
  });

  it('logs skipped addresses by reason once per change', () => {
    const lines: string[] = [];
    const log = createLogger({
      name: 'test',
      destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }),
    });
    const report = skipLogger(log);
    const skipped: SkippedAddress[] = [{ address: '10.0.2.7', reason: 'not-a-member' }];
    const both: SkippedAddress[] = [...skipped, { address: '10.0.9.9', reason: 'outside-subnet' }];
    report('n', both);
    report('n', [...both].reverse());
    report('n', []);
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      name: 'n',
      routing_skipped: { 'not-a-member': 1, 'outside-subnet': 1 },
      skipped: both,
      message: 'HAProxy addresses skipped',
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({
      routing_skipped: {},
      message: 'no HAProxy address skipped',
    });
  });
});
