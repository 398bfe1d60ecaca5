import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TransientError } from '../../shared/errors';
import { createAutoscalers } from '../../shared/gcp/autoscalers';
import { createGcpClients } from '../../shared/gcp/client';
import {
  OperationFailedError,
  RequestRefusedError,
  ResourceBusyError,
  wasRefused,
} from '../../shared/gcp/errors';

/**
 * The Compute adapter's operation handling with the real client against a stub server that
 * answers as Compute does: a failed operation is reported, a stuck one is bounded.
 */
type Reply = { status: number; body: unknown };
let answer: (method: string, url: string) => Reply;
const seen: string[] = [];
let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      const r = answer(req.method ?? '', req.url ?? '');
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const ref = { project: 'ilb-test', zone: 'us-central1-a', name: 'ilb-haproxy' };
const current = { name: 'ilb-haproxy', autoscalingPolicy: { minNumReplicas: 1, maxNumReplicas: 3 } };
const patch = { name: 'ilb-haproxy', autoscalingPolicy: { mode: 'ONLY_SCALE_OUT' } };
const requestId = '6f1c2b1e-3a4d-5e6f-8a9b-0c1d2e3f4a5b';
/** The adapter on its own clients, pointed at the stub. */
function stubAutoscalers(options: { operationTimeoutMs?: number } = {}) {
  const clients = createGcpClients({ apiEndpoint: '127.0.0.1', port, protocol: 'http' });
  return { autoscalers: createAutoscalers(clients, options), close: () => clients.close() };
}
const op = (status: string, extra: Record<string, unknown> = {}) => ({
  kind: 'compute#operation',
  name: 'operation-1',
  zone: `projects/ilb-test/zones/us-central1-a`,
  status,
  ...extra,
});

test('a failed operation is reported as a permanent error with its message', async () => {
  answer = (method) =>
    method === 'PATCH'
      ? { status: 200, body: op('RUNNING') }
      : {
          status: 200,
          body: op('DONE', {
            httpErrorStatusCode: 400,
            error: { errors: [{ code: 'INVALID_FIELD_VALUE', message: 'minNumReplicas above max' }] },
          }),
        };
  const port_ = stubAutoscalers();
  try {
    const err = await port_.autoscalers.apply(ref, current, patch, requestId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(wasRefused(err)).toBe(false);
    expect(err).toMatchObject({ transient: false, message: expect.stringMatching(/INVALID_FIELD_VALUE/) });
    expect(seen).toContain(
      `PATCH /compute/v1/projects/ilb-test/zones/us-central1-a/autoscalers?autoscaler=ilb-haproxy&requestId=${requestId}`,
    );
    expect(
      seen.some((s) =>
        s.startsWith('POST /compute/v1/projects/ilb-test/zones/us-central1-a/operations/operation-1/wait'),
      ),
    ).toBe(true);
  } finally {
    await port_.close();
  }
});

test('an operation still running at the bound is a transient error, not a hang', async () => {
  answer = () => ({ status: 200, body: op('RUNNING') });
  const port_ = stubAutoscalers({ operationTimeoutMs: 1500 });
  try {
    const started = Date.now();
    const waitsBefore = seen.filter((s) => s.includes('/wait')).length;
    const err = await port_.autoscalers.apply(ref, current, patch, requestId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({
      transient: true,
      message: expect.stringMatching(/still RUNNING after 1500 ms/),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    // `wait` answering at once is not called in a tight loop.
    expect(seen.filter((s) => s.includes('/wait')).length - waitsBefore).toBeLessThanOrEqual(5);
  } finally {
    await port_.close();
  }
});

test('a 400 resourceNotReady is a busy error; another 400 is a refused, permanent one', async () => {
  const error = (reason: string) => ({
    status: 400,
    body: { error: { code: 400, message: reason, errors: [{ reason, domain: 'global', message: reason }] } },
  });
  const port_ = stubAutoscalers();
  try {
    answer = () => error('resourceNotReady');
    const busy = await port_.autoscalers.apply(ref, current, patch, requestId).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ResourceBusyError);
    expect(busy).toMatchObject({ transient: true });
    expect(wasRefused(busy)).toBe(true);
    answer = () => error('invalid');
    const refused = await port_.autoscalers.apply(ref, current, patch, requestId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RequestRefusedError);
    expect(refused).toMatchObject({ transient: false, status: 400 });
    expect(wasRefused(refused)).toBe(true);
  } finally {
    await port_.close();
  }
});

test('a regional autoscaler is read, patched and awaited through the regional calls', async () => {
  const regional = { project: 'ilb-test', region: 'us-central1', name: 'ilb-haproxy' };
  answer = (method) =>
    method === 'GET'
      ? { status: 200, body: { ...current, kind: 'compute#autoscaler' } }
      : { status: 200, body: op(method === 'PATCH' ? 'RUNNING' : 'DONE') };
  const port_ = stubAutoscalers();
  try {
    expect(await port_.autoscalers.get(regional)).toMatchObject(current);
    await expect(port_.autoscalers.apply(regional, current, patch, requestId)).resolves.toEqual({
      operation: 'operation-1',
      method: 'patch',
    });
    expect(seen).toEqual(
      expect.arrayContaining([
        'GET /compute/v1/projects/ilb-test/regions/us-central1/autoscalers/ilb-haproxy',
        `PATCH /compute/v1/projects/ilb-test/regions/us-central1/autoscalers?autoscaler=ilb-haproxy&requestId=${requestId}`,
        'POST /compute/v1/projects/ilb-test/regions/us-central1/operations/operation-1/wait',
      ]),
    );
  } finally {
    await port_.close();
  }
});
