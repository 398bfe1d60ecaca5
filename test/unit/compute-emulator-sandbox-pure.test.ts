import { readFileSync } from 'node:fs';
import { eventFixture } from '../fixtures/events';
import { cloudEventRequest } from '../../infra-scripts/local/push-bridge';
import { parseStatsCsv } from '../../services/haproxy-sync/stats';
import { parseUnit } from '../../infra-scripts/local/instance';
import { instancePrefix } from '../../infra-scripts/local/scenarios/topology';
import { nodeStanding, type ViewNode } from '../../infra-scripts/local/status-page/consul-view';

test('the push bridge builds the Eventarc request whose body matches the fixture CloudEvent data', () => {
  const fixture = eventFixture<{
    source: string;
    type: string;
    data: {
      message: { data: string; messageId: string; publishTime: string; attributes: Record<string, string> };
      subscription: string;
    };
  }>('cloudevent-pubsub-instance-delete-last.json');
  const m = fixture.data.message;
  const req = cloudEventRequest(
    'ilb-demo',
    {
      topic: 'instance-events',
      subscription: 'eventarc-us-central1-instance-events-sub-123',
      url: 'http://127.0.0.1:1/',
    },
    {
      id: m.messageId,
      data: Buffer.from(m.data, 'base64'),
      attributes: m.attributes,
      publishTime: new Date(m.publishTime),
    },
  );
  expect(req.headers['ce-type']).toBe(fixture.type);
  expect(req.headers['ce-source']).toBe(fixture.source);
  expect(req.headers['ce-id']).toBe(m.messageId);
  const body = JSON.parse(req.body) as typeof fixture.data;
  expect(body.subscription).toBe(fixture.data.subscription);
  expect(body.message.data).toBe(m.data);
  expect(body.message.attributes).toEqual(m.attributes);
  expect(Date.parse(body.message.publishTime)).toBe(Date.parse(m.publishTime));
});

test('HAProxy stats CSV rows are keyed by the header names', () => {
  const csv = '# pxname,svname,rate,req_rate\ninternal,FRONTEND,3,61\nbackends,z1,60,\n';
  expect(parseStatsCsv(csv)).toEqual({
    columns: ['pxname', 'svname', 'rate', 'req_rate'],
    rows: [
      { pxname: 'internal', svname: 'FRONTEND', rate: '3', req_rate: '61' },
      { pxname: 'backends', svname: 'z1', rate: '60', req_rate: '' },
    ],
  });
  expect(parseStatsCsv('Unknown command')).toEqual({ columns: [], rows: [] });
});

test('instances live on the /24 after the servers', () => {
  expect(instancePrefix('127.0.10')).toBe('127.0.11.');
  expect(instancePrefix('127.31.255')).toBe('127.31.0.');
});

describe('nodeStanding', () => {
  const instance = { name: 'backend-a1b2', id: '1001' };
  const serf = { id: 'serfHealth', service: '', status: 'passing' };
  const service = { id: 'service:backend', service: 'backend', status: 'passing' };
  const node = (meta: Record<string, string>, checks = [serf, service]): ViewNode => ({
    name: 'backend-a1b2',
    address: '127.0.11.5',
    meta,
    checks,
  });

  it('is healthy only as a live member with its own id and every check passing', () => {
    expect(nodeStanding([node({ 'gce-instance-id': '1001' })], instance)).toBe('healthy');
    expect(nodeStanding([], instance)).toBe('missing');
    expect(nodeStanding([node({ 'gce-instance-id': '999' })], instance)).toBe('stale');
    expect(nodeStanding([node({ 'gce-instance-id': '1001' }, [service])], instance)).toBe('unhealthy');
    expect(
      nodeStanding(
        [node({ 'gce-instance-id': '1001' }, [serf, { ...service, status: 'critical' }])],
        instance,
      ),
    ).toBe('unhealthy');
  });

  it('tells a healthy node registered without its metadata apart', () => {
    expect(nodeStanding([node({})], instance)).toBe('no-identity');
  });
});

test('the Consul agent unit logs in with its identity, then confirms the node metadata without failing the unit', () => {
  const unit = parseUnit('consul', readFileSync('packer/consul/files/consul.service', 'utf8'));
  // A failed login fails the unit (no token, no agent); a failed metadata confirmation does not.
  expect(unit.execStartPost).toEqual([
    '/opt/ilb/bin/consul-identity.sh ensure',
    '-/opt/ilb/bin/consul-bootstrap.sh --confirm-node-meta',
  ]);
});
