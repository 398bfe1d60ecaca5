import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
// Registers `instanceEvents`; its configuration is read on the first event, set in beforeAll.
import '../../functions/instance-events';
import { nodeMetaKeys } from '../../shared/contract';
import { eventFixture } from '../fixtures/events';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import {
  catalogNode,
  forceLeaveToken,
  functionToken,
  registerNode,
  startComputeEdge,
  type ComputeEdge,
} from './instance-events.support';

type Json = Record<string, unknown>;
const fixture = (name: string) => eventFixture<Json>(name);

/** The fixture's `-last` entry (base64 in a Pub/Sub message) retargeted at another node. */
function pubsubMessage(name: string, instanceId: string): Json {
  const entry = fixture('audit-instance-delete-last.json');
  entry.insertId = `ins-${name}`;
  (entry.protoPayload as Json).resourceName = `projects/ilb-demo/zones/us-central1-f/instances/${name}`;
  (entry.resource as Json).labels = {
    instance_id: instanceId,
    project_id: 'ilb-demo',
    zone: 'us-central1-f',
  };
  return {
    data: Buffer.from(JSON.stringify(entry)).toString('base64'),
    messageId: `m-${name}`,
    publishTime: '2026-11-26T10:14:02.5Z',
    attributes: { 'logging.googleapis.com/timestamp': entry.timestamp as string },
  };
}

const subscription = 'projects/ilb-demo/subscriptions/eventarc-us-central1-instance-events-sub-123';
const meta = (id: string) => ({
  [nodeMetaKeys.instanceId]: id,
  [nodeMetaKeys.zone]: 'us-central1-f',
  [nodeMetaKeys.role]: 'backend',
});

describe('instanceEvents through the Functions Framework', () => {
  let cluster: ConsulCluster;
  let consul: ConsulAgent;
  let server: Server;
  let url: string;
  let edge: ComputeEdge;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    cluster = await startConsulCluster({ servers: 1 });
    consul = cluster.servers[0] as ConsulAgent;
    process.env.CONSUL_HTTP_ADDR = consul.httpAddr;
    process.env.CONSUL_HTTP_TOKEN = await functionToken(consul);
    process.env.ORCHESTRATOR_CONSUL_RETRIES = '1';
    process.env.CONSUL_FORCE_LEAVE_TOKEN = await forceLeaveToken(consul);
    // Compute confirms each removal: the edge knows no instance, so every one is gone (404).
    edge = await startComputeEdge(`${cluster.prefix}.250`);
    process.env.COMPUTE_API_ENDPOINT = edge.endpoint;
    // The fixtures carry fixed timestamps: a retention long enough that they stay in the window.
    process.env.ORCHESTRATOR_LEDGER_RETENTION_S = String(20 * 365 * 24 * 3600);
    server = getTestServer('instanceEvents');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    process.env = savedEnv;
    if (server) await new Promise((resolve) => server.close(resolve));
    await edge?.stop();
    await cluster?.stop();
  });

  const post = (pathname: string, headers: Record<string, string>, body: unknown) =>
    fetch(`${url}${pathname}`, { method: 'POST', headers, body: JSON.stringify(body) });

  it('handles a binary-mode CloudEvent', async () => {
    await registerNode(consul, 'backend-binary', meta('8101'));
    const res = await post(
      '/',
      {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': '//pubsub.googleapis.com/projects/ilb-demo/topics/instance-events',
        'ce-id': 'binary-1',
      },
      { message: pubsubMessage('backend-binary', '8101'), subscription },
    );
    expect(res.status).toBeLessThan(300);
    expect(await catalogNode(consul, 'backend-binary')).toBeNull();
  });

  it('handles the structured-mode CloudEvent of the fixture', async () => {
    // The fixture's node, with the fixture's instance id.
    await registerNode(consul, 'backend-7k2p', meta('4512345678901234567'));
    const event = fixture('cloudevent-pubsub-instance-delete-last.json');
    const res = await post('/', { 'content-type': 'application/cloudevents+json' }, event);
    expect(res.status).toBeLessThan(300);
    expect(await catalogNode(consul, 'backend-7k2p')).toBeNull();
  });

  it('handles a raw Pub/Sub push body', async () => {
    await registerNode(consul, 'backend-push', meta('8103'));
    const res = await post(
      '/projects/ilb-demo/topics/instance-events',
      { 'content-type': 'application/json' },
      { message: pubsubMessage('backend-push', '8103'), subscription },
    );
    expect(res.status).toBeLessThan(300);
    expect(await catalogNode(consul, 'backend-push')).toBeNull();
  });

  it('acknowledges an unparseable message (no retry storm) and changes nothing', async () => {
    await registerNode(consul, 'backend-kept', meta('8104'));
    const garbage = { data: Buffer.from('not json').toString('base64'), messageId: 'g-1' };
    const res = await post(
      '/projects/ilb-demo/topics/instance-events',
      { 'content-type': 'application/json' },
      { message: garbage, subscription },
    );
    expect(res.status).toBeLessThan(300);
    expect(await catalogNode(consul, 'backend-kept')).not.toBeNull();
  });

  it('answers an error (so Pub/Sub redelivers) while Consul is unreachable', async () => {
    await consul.kill();
    const res = await post(
      '/projects/ilb-demo/topics/instance-events',
      { 'content-type': 'application/json' },
      { message: pubsubMessage('backend-kept', '8104'), subscription },
    );
    expect(res.status).toBeGreaterThanOrEqual(500);
  });
});
