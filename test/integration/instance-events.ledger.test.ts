import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { createLedger, EventInProgressError } from '../../shared/ledger/ledger';
import { startConsulDev, type ConsulDev } from '../harness';

describe('idempotency ledger in real Consul KV', () => {
  let consul: ConsulDev;
  let kv: ConsulClient['kv'];
  let n = 0;
  const prefix = () => `gce-ilb-orchestrator/ledger/test-${++n}/`;
  const ledgerAt = (p: string, now?: () => number, waitForOtherMs?: number) =>
    createLedger({ kv, prefix: p, inProgressTtlMs: 60_000, retentionMs: 7 * day, now, waitForOtherMs });
  const day = 24 * 3600 * 1000;
  // Events of the current hour: a fixed date falls out of the ledger's retention a week later.
  const t0 = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const evt = (id: string, at = t0) => ({ id, at });

  beforeAll(async () => {
    consul = await startConsulDev();
    kv = createConsulClient(
      loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: consul.token }).consul,
    ).kv;
  });
  afterAll(async () => consul?.stop());

  it('runs the work once and answers later deliveries with the stored result', async () => {
    const ledger = ledgerAt(prefix());
    let runs = 0;
    const work = async () => ({ run: ++runs });
    expect(await ledger.run(evt('evt/1'), work)).toEqual({ duplicate: false, result: { run: 1 } });
    expect(await ledger.run(evt('evt/1'), work)).toEqual({ duplicate: true, result: { run: 1 } });
    expect(runs).toBe(1);
    const stored = await kv.get(ledger.keyOf(evt('evt/1')));
    expect(JSON.parse(stored?.value ?? '{}')).toMatchObject({ state: 'completed' });
  });

  it('frees the id when the work fails, so the redelivery runs it', async () => {
    const ledger = ledgerAt(prefix());
    await expect(ledger.run(evt('evt'), () => Promise.reject(new Error('Consul hiccup')))).rejects.toThrow(
      'Consul hiccup',
    );
    expect(await kv.get(ledger.keyOf(evt('evt')))).toBeNull();
    expect(await ledger.run(evt('evt'), async () => 'ok')).toEqual({ duplicate: false, result: 'ok' });
  });

  it('refuses a delivery while another one holds the id past the wait, and takes over an expired claim', async () => {
    const p = prefix();
    let clock = 1_000_000;
    const ledger = ledgerAt(p, () => clock, 100);
    let release!: () => void;
    const holding = ledger.run(
      evt('evt'),
      () => new Promise<string>((resolve) => (release = () => resolve('first'))),
    );
    await new Promise((r) => setTimeout(r, 200));
    await expect(ledger.run(evt('evt'), async () => 'second')).rejects.toBeInstanceOf(EventInProgressError);
    // The holder "crashed": its claim outlives the TTL and another delivery takes over.
    clock += 61_000;
    expect(await ledger.run(evt('evt'), async () => 'third')).toEqual({ duplicate: false, result: 'third' });
    release();
    // The late holder's completion loses its CAS and does not overwrite the new owner's record.
    expect(await holding).toEqual({ duplicate: false, result: 'first' });
    const stored = JSON.parse((await kv.get(ledgerAt(p).keyOf(evt('evt'))))?.value ?? '{}') as {
      result?: string;
    };
    expect(stored.result).toBe('third');
  });

  it('overwrites an unreadable record instead of wedging the id', async () => {
    const ledger = ledgerAt(prefix());
    expect(await kv.cas(ledger.keyOf(evt('evt')), 'not json', 0)).not.toBeNull();
    expect(await ledger.run(evt('evt'), async () => 1)).toEqual({ duplicate: false, result: 1 });
  });

  it('files events by their day and purges the days past the retention once a day', async () => {
    const p = prefix();
    // A fixed day, with the ledger's clock set to it: the folder names are known.
    const t0 = Date.UTC(2026, 10, 26, 10);
    const old = evt('old', t0);
    const recent = evt('recent', t0 + 28 * day);
    const then = ledgerAt(p, () => t0);
    await then.run(old, async () => 1);
    expect(then.keyOf(old)).toBe(`${p}2026-11-26/old`);
    expect(await kv.get(then.keyOf(old))).not.toBeNull();
    // A month later, the first completed event of the day purges the expired day folders.
    const now = ledgerAt(p, () => t0 + 30 * day);
    await now.run(recent, async () => 2);
    expect(await kv.get(now.keyOf(old))).toBeNull();
    expect(await kv.keys(p, { separator: '/' })).toEqual([`${p}2026-12-24/`]);
    expect(await now.run(recent, async () => 3)).toEqual({ duplicate: true, result: 2 });
    expect(await now.purge()).toEqual([]);
  });

  it('answers a duplicate that arrives while the first delivery runs once that one completes', async () => {
    const ledger = ledgerAt(prefix());
    let release!: () => void;
    const first = ledger.run(
      evt('evt'),
      () => new Promise<string>((resolve) => (release = () => resolve('first'))),
    );
    await new Promise((r) => setTimeout(r, 100));
    let secondRan = false;
    const second = ledger.run(evt('evt'), async () => {
      secondRan = true;
      return 'second';
    });
    await new Promise((r) => setTimeout(r, 300));
    release();
    expect(await first).toEqual({ duplicate: false, result: 'first' });
    expect(await second).toEqual({ duplicate: true, result: 'first' });
    expect(secondRan).toBe(false);
  });

  it('runs the waiting delivery itself when the one it waited for fails: nothing is lost', async () => {
    const ledger = ledgerAt(prefix());
    let fail!: () => void;
    const first = ledger.run(
      evt('evt'),
      () => new Promise<string>((_, reject) => (fail = () => reject(new Error('Consul hiccup')))),
    );
    await new Promise((r) => setTimeout(r, 100));
    const second = ledger.run(evt('evt'), async () => 'second');
    await new Promise((r) => setTimeout(r, 200));
    fail();
    await expect(first).rejects.toThrow('Consul hiccup');
    expect(await second).toEqual({ duplicate: false, result: 'second' });
  });

  it('lets exactly one of many concurrent deliveries run; the others wait and acknowledge', async () => {
    const ledger = ledgerAt(prefix());
    let runs = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        ledger.run(evt('evt'), async () => {
          await new Promise((r) => setTimeout(r, 50));
          return ++runs;
        }),
      ),
    );
    expect(runs).toBe(1);
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
    expect(outcomes.every((o) => o.result === 1)).toBe(true);
  });
});
