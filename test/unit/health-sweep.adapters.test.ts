import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { protobuf } from 'google-gax';
import { ConfigError } from '../../shared/config';
import { idText, recreateRequestId } from '../../shared/gcp/groups';
import { timeSeriesOf } from '../../shared/gcp/monitoring';
import { loadHealthSweepConfig } from '../../shared/health-sweep/config';
import type { SweepPlan } from '../../shared/health-sweep/plan';
import { healthSweepKeys, stateOps } from '../../shared/health-sweep/state';

describe('idText: uint64 ids as exact decimal strings', () => {
  test('strings pass, safe numbers convert, unsafe numbers are refused', () => {
    expect(idText('18446744073709551615')).toBe('18446744073709551615');
    expect(idText(123)).toBe('123');
    expect(idText(2 ** 60)).toBeUndefined();
    expect(idText(null)).toBeUndefined();
  });

  test('an unsigned Long above 2^63 keeps every digit', () => {
    // The Long class the clients' protobufjs decodes uint64 fields into.
    const Long = protobuf.util.Long as unknown as { fromString(v: string, unsigned: boolean): unknown };
    expect(idText(Long.fromString('18446744073709551615', true))).toBe('18446744073709551615');
    expect(idText({ toString: () => 'not a number' })).toBeUndefined();
  });
});

describe('recreateRequestId', () => {
  test('a UUID, the same for the same group and instance, different otherwise', () => {
    const a = recreateRequestId('projects/p/zones/z/instanceGroupManagers/g', '1');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(recreateRequestId('projects/p/zones/z/instanceGroupManagers/g', '1')).toBe(a);
    expect(recreateRequestId('projects/p/zones/z/instanceGroupManagers/g', '2')).not.toBe(a);
  });
});

describe('stateOps: every state write is a compare-and-set on the index read', () => {
  const keys = healthSweepKeys('gce-ilb-orchestrator/');
  test('bucket first, then mark puts (cas) and deletes (delete-cas)', () => {
    const plan = {
      bucket: { state: { tokens: 3, at: 1000 }, cas: 7 },
      marks: [
        { op: 'put', instanceId: '11', mark: { absentCount: 2 }, cas: 5 },
        { op: 'delete', instanceId: '12', cas: 9 },
      ],
    } as unknown as SweepPlan;
    const ops = stateOps(plan, keys);
    expect(ops).toEqual([
      { KV: { Verb: 'cas', Key: keys.bucket, Value: expect.any(String), Index: 7 } },
      { KV: { Verb: 'cas', Key: `${keys.marks}11`, Value: expect.any(String), Index: 5 } },
      { KV: { Verb: 'delete-cas', Key: `${keys.marks}12`, Index: 9 } },
    ]);
    const first = ops[0] as { KV: { Value: string } };
    expect(JSON.parse(Buffer.from(first.KV.Value, 'base64').toString())).toEqual({ tokens: 3, at: 1000 });
  });
});

describe('timeSeriesOf', () => {
  test('one point per series on the global resource, at the sweep time', () => {
    const [ts] = timeSeriesOf(
      'ilb-demo',
      [{ type: 'custom.googleapis.com/ilb/orphans', labels: {}, value: 2 }],
      1500,
    );
    expect(ts).toEqual({
      metric: { type: 'custom.googleapis.com/ilb/orphans', labels: {} },
      resource: { type: 'global', labels: { project_id: 'ilb-demo' } },
      points: [{ interval: { endTime: { seconds: 1, nanos: 500_000_000 } }, value: { doubleValue: 2 } }],
    });
  });
});

describe('loadHealthSweepConfig', () => {
  const doc = {
    groups: [{ project: 'ilb-demo', zone: 'us-central1-a', name: 'backend-a', role: 'backend' }],
  };
  test('inline JSON or a file path', () => {
    expect(loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_JSON: JSON.stringify(doc) }).groups).toHaveLength(1);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'sweep-')), 'c.json');
    writeFileSync(file, JSON.stringify(doc));
    expect(loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_FILE: file }).groups[0]?.name).toBe('backend-a');
  });

  test('missing, unreadable, not JSON or invalid: a ConfigError naming the problem', () => {
    expect(() => loadHealthSweepConfig({})).toThrow(ConfigError);
    expect(() => loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_FILE: '/nonexistent/c.json' })).toThrow(
      /cannot read/,
    );
    expect(() => loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_JSON: '{nope' })).toThrow(/not JSON/);
    expect(() => loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_JSON: '{"groups":[]}' })).toThrow(/groups/);
  });

  test('the example configuration is valid', () => {
    const example = path.resolve(__dirname, '../../infra-scripts/config/health-sweep.example.json');
    expect(loadHealthSweepConfig({ HEALTH_SWEEP_CONFIG_FILE: example }).groups).toHaveLength(3);
  });
});
