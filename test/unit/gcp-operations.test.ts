import type { GcpClients } from '../../shared/gcp/client';
import { createZoneOperationsApi, operationNamePattern } from '../../shared/gcp/operations';

/** A clients factory whose zoneOperations.get answers with `answer` (or throws it). */
function clients(answer: () => unknown, asked: unknown[] = []): GcpClients {
  const zoneOperations = {
    get: async (request: unknown) => {
      asked.push(request);
      return [answer()];
    },
  };
  return { ready: async () => zoneOperations } as unknown as GcpClients;
}

const ref = {
  project: 'ilb-demo',
  zone: 'us-central1-f',
  name: 'operation-1764160000123-64a1f0c2d4e5a-1b2c3d4e',
};
const operation = {
  id: '5123',
  name: ref.name,
  operationType: 'delete',
  targetId: '4512',
  status: 'RUNNING',
};

describe('zoneOperations.get', () => {
  it('reads type, target id, status and failure by the operation name', async () => {
    const asked: unknown[] = [];
    await expect(createZoneOperationsApi(clients(() => operation, asked)).get(ref)).resolves.toEqual({
      found: true,
      operationType: 'delete',
      targetId: '4512',
      status: 'RUNNING',
      failed: false,
    });
    expect(asked).toEqual([{ project: 'ilb-demo', zone: 'us-central1-f', operation: ref.name }]);
    const failed = { ...operation, status: 'DONE', error: { errors: [{ code: 'RESOURCE_NOT_FOUND' }] } };
    await expect(createZoneOperationsApi(clients(() => failed)).get(ref)).resolves.toMatchObject({
      status: 'DONE',
      failed: true,
    });
  });

  it('answers not found for a 404 and for a name Compute never gives, without asking', async () => {
    const notFound = () => {
      throw Object.assign(new Error('not found'), { code: 404 });
    };
    await expect(createZoneOperationsApi(clients(notFound)).get(ref)).resolves.toEqual({ found: false });
    const asked: unknown[] = [];
    const api = createZoneOperationsApi(clients(() => operation, asked));
    for (const name of ['../instances/x', 'a/b?c', 'Operation-UPPER', 'x'.repeat(200), '', 'op-', '0123'])
      await expect(api.get({ ...ref, name })).resolves.toEqual({ found: false });
    expect(asked).toEqual([]);
  });

  it('takes the names Compute logs and numeric operation ids', () => {
    for (const name of [ref.name, 'systemevent-1764161234567-5f4e3d2c1b0a9', '5123456789012345678', 'x'])
      expect(operationNamePattern.test(name)).toBe(true);
  });

  it('refuses an answer without the fields it confirms by', async () => {
    for (const bad of [{ ...operation, targetId: 'abc' }, { ...operation, status: 'UNKNOWN' }, {}])
      await expect(createZoneOperationsApi(clients(() => bad)).get(ref)).rejects.toThrow(/unexpected answer/);
  });
});
