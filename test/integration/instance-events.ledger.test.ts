import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulApi } from '../../shared/consul/client';
import { createLedger, EventInProgressError } from '../../shared/ledger/ledger';
import { startConsulDev, type ConsulDev } from '../harness';

describe('idempotency ledger in real Consul KV', () => {
  let consul: ConsulDev;
  let kv: ConsulApi;
  let n = 0;
  const prefix = () => `gce-ilb-orchestrator/ledger/test-${++n}/`;
  const ledgerAt = (p: string, now?: () => number) =>
    createLedger({ kv, prefix: p, inProgressTtlMs: 60_000, retentionMs: 3_600_000, now });

  beforeAll(async () => {
    consul = await startConsulDev();
    kv = createConsulClient(
      loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: consul.token }).consul,
    );
  });
  afterAll(async () => consul?.stop());

  it('runs the work once and answers later deliveries with the stored result', async () => {
    const ledger = ledgerAt(prefix());
    let runs = 0;
    const work = async () => ({ run: ++runs });
    expect(await ledger.run('evt/1', work)).toEqual({ duplicate: false, result: { run: 1 } });
    expect(await ledger.run('evt/1', work)).toEqual({ duplicate: true, result: { run: 1 } });
    expect(runs).toBe(1);
    const stored = await kv.kvGet(ledger.keyOf('evt/1'));
    expect(JSON.parse(stored?.value ?? '{}')).toMatchObject({ state: 'completed' });
  });

  it('frees the id when the work fails, so the redelivery runs it', async () => {
    const ledger = ledgerAt(prefix());
    await expect(ledger.run('evt', () => Promise.reject(new Error('Consul hiccup')))).rejects.toThrow(
      'Consul hiccup',
    );
    expect(await kv.kvGet(ledger.keyOf('evt'))).toBeNull();
    expect(await ledger.run('evt', async () => 'ok')).toEqual({ duplicate: false, result: 'ok' });
  });

  it('refuses a delivery while another one holds the id, and takes over an expired claim', async () => {
    const p = prefix();
    let clock = 1_000_000;
    const ledger = ledgerAt(p, () => clock);
    let release!: () => void;
    const holding = ledger.run(
      'evt',
      () => new Promise<string>((resolve) => (release = () => resolve('first'))),
    );
    await new Promise((r) => setTimeout(r, 200));
    await expect(ledger.run('evt', async () => 'second')).rejects.toBeInstanceOf(EventInProgressError);
    // The holder "crashed": its claim outlives the TTL and another delivery takes over.
    clock += 61_000;
    expect(await ledger.run('evt', async () => 'third')).toEqual({ duplicate: false, result: 'third' });
    release();
    // The late holder's completion loses its CAS and does not overwrite the new owner's record.
    expect(await holding).toEqual({ duplicate: false, result: 'first' });
    const stored = JSON.parse((await kv.kvGet(ledgerAt(p).keyOf('evt')))?.value ?? '{}') as {
      result?: string;
    };
    expect(stored.result).toBe('third');
  });

  it('overwrites an unreadable record instead of wedging the id', async () => {
    const ledger = ledgerAt(prefix());
    expect(await kv.kvPut(ledger.keyOf('evt'), 'not json', 0)).not.toBeNull();
    expect(await ledger.run('evt', async () => 1)).toEqual({ duplicate: false, result: 1 });
  });

  it('lets exactly one of many concurrent deliveries run', async () => {
    const ledger = ledgerAt(prefix());
    let runs = 0;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, () => ledger.run('evt', async () => ++runs)),
    );
    expect(runs).toBe(1);
    expect(outcomes.filter((o) => o.status === 'fulfilled' && !o.value.duplicate)).toHaveLength(1);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(EventInProgressError);
    }
  });
});
