import { Writable } from 'node:stream';
import type { CatalogNodeDetail } from '../../shared/consul';
import { nodeMetaKeys } from '../../shared/contract';
import { PermanentError, TransientError } from '../../shared/errors';
import { createInstanceEventsHandler, type InstanceEventsConsul } from '../../shared/instance-events/handler';
import type { Ledger } from '../../shared/ledger/ledger';
import { createLogger } from '../../shared/logging';
import { eventFixture } from '../fixtures/events';

/** The handler's one decision: a transient failure is thrown (redelivery), a permanent one acknowledged. */
const message = () => ({
  message: {
    data: Buffer.from(JSON.stringify(eventFixture('audit-instance-delete-last.json'))).toString('base64'),
  },
});

const node: CatalogNodeDetail = {
  name: 'backend-7k2p',
  address: '10.0.0.7',
  meta: { [nodeMetaKeys.instanceId]: '4512345678901234567' },
  modifyIndex: 42,
  services: [],
};

function setup(deleteNodeCas: () => Promise<'deleted' | 'conflict'>) {
  const logs: Record<string, unknown>[] = [];
  const ledgerRuns: string[] = [];
  const unused = () => Promise.reject(new Error('not expected in this test'));
  const consul: InstanceEventsConsul = {
    at: () => {
      throw new Error('not expected in this test');
    },
    catalog: { node: async () => node, register: unused, deregister: unused, deleteNodeCas },
    agent: { forceLeave: async () => 'left' },
    kv: { get: async () => null, cas: async () => 1, delete: async () => true },
  };
  // Runs the work as the real ledger does: its result is recorded, a throw frees the id and propagates.
  const ledger: Ledger = {
    keyOf: (e) => e.id,
    purge: async () => [],
    async run(event, work) {
      const result = await work();
      ledgerRuns.push(event.id);
      return { duplicate: false, result };
    },
  };
  const handle = createInstanceEventsHandler({
    consul,
    instances: { get: unused },
    ledger,
    logger: createLogger({
      name: 'instanceEvents',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }),
    }),
    recordPrefix: 'records/',
    agentPort: 8500,
    dryRun: false,
  });
  return { handle, logs, ledgerRuns };
}

describe('instanceEvents handler: redeliver or acknowledge', () => {
  it('acts and acknowledges when every step succeeds', async () => {
    const { handle, ledgerRuns } = setup(async () => 'deleted');
    await expect(handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ decision: 'deregister', reason: 'instance-gone' }],
    });
    expect(ledgerRuns).toHaveLength(1);
  });

  it('throws a transient failure, so Pub/Sub redelivers and the ledger records nothing', async () => {
    const { handle, logs, ledgerRuns } = setup(() =>
      Promise.reject(new TransientError('txn: HTTP 500: No cluster leader', { status: 500 })),
    );
    await expect(handle(message())).rejects.toBeInstanceOf(TransientError);
    expect(ledgerRuns).toHaveLength(0);
    expect(logs).toContainEqual(expect.objectContaining({ severity: 'WARNING', decision: 'failed' }));
  });

  it('acknowledges a permanent failure with an ERROR line, recorded so a redelivery is a duplicate', async () => {
    const { handle, logs, ledgerRuns } = setup(() =>
      Promise.reject(new PermanentError('txn: HTTP 403: Permission denied', { status: 403 })),
    );
    await expect(handle(message())).resolves.toMatchObject({
      status: 'applied',
      targets: [{ decision: 'failed', reason: expect.stringMatching(/403/) }],
    });
    expect(ledgerRuns).toHaveLength(1);
    expect(logs).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', message: expect.stringMatching(/failed permanently/) }),
    );
  });

  it('classifies what an adapter throws unclassified (a 4xx-like answer is permanent)', async () => {
    const { handle } = setup(() =>
      Promise.reject(Object.assign(new Error('bad request'), { statusCode: 400 })),
    );
    await expect(handle(message())).resolves.toMatchObject({ targets: [{ decision: 'failed' }] });
  });
});
