import { eventFixture } from '../fixtures/events';
import { cloudEventRequest } from '../../infra-scripts/local/push-bridge';
import { parseStatsCsv } from '../../infra-scripts/local/scenarios/sandbox';

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
  expect(parseStatsCsv(csv)).toEqual([
    { pxname: 'internal', svname: 'FRONTEND', rate: '3', req_rate: '61' },
    { pxname: 'backends', svname: 'z1', rate: '60', req_rate: '' },
  ]);
  expect(parseStatsCsv('not csv')).toEqual([]);
});
