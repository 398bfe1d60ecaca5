import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import {
  freePort,
  randomLoopbackPrefix,
  startConsulDev,
  startHaproxy,
  startProcess,
  startPubsubEmulator,
  toolPath,
  waitFor,
  type ConsulDev,
} from '../harness';
import { services } from '../../shared/contract';

describe('Pub/Sub emulator (pstest) through @google-cloud/pubsub', () => {
  it('publishes and pulls a message with its attributes', async () => {
    const emulator = await startPubsubEmulator();
    const pubsub = new PubSub({ projectId: 'demo-project', apiEndpoint: emulator.host, emulatorMode: true });
    try {
      const [topic] = await pubsub.createTopic('instance-events');
      const [subscription] = await topic.createSubscription('instance-events-fn');
      const received = new Promise<Message>((resolve) => subscription.once('message', resolve));
      const payload = { insertId: 'abc123', protoPayload: { methodName: 'v1.compute.instances.delete' } };
      const id = await topic.publishMessage({ json: payload, attributes: { source: 'log-sink' } });

      const message = await received;
      message.ack();
      expect(message.id).toBe(id);
      expect(JSON.parse(message.data.toString('utf8'))).toEqual(payload);
      expect(message.attributes).toEqual({ source: 'log-sink' });
      await subscription.close();
    } finally {
      await pubsub.close();
      await emulator.stop();
    }
  });
});

describe('HAProxy proxies HTTP to a Node server', () => {
  it('answers through the proxy and reports the backend down when it stops', async () => {
    const ip = `${randomLoopbackPrefix()}.1`;
    const appPort = await freePort(ip);
    const proxyPort = await freePort(ip);
    const app = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ served: 'node', path: req.url }));
    });
    await new Promise<void>((resolve) => app.listen(appPort, ip, resolve));
    const haproxy = await startHaproxy({
      waitFor: { host: ip, port: proxyPort },
      config: [
        'global',
        '  log stderr format raw local0 err',
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        'frontend fe',
        `  bind ${ip}:${proxyPort}`,
        '  default_backend be',
        'backend be',
        `  server app ${ip}:${appPort} check inter 200ms fall 1 rise 1`,
        '',
      ].join('\n'),
    });
    try {
      const res = await fetch(`http://${ip}:${proxyPort}/hello`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ served: 'node', path: '/hello' });

      await new Promise<void>((resolve) => app.close(() => resolve()));
      await waitFor('HAProxy to mark the server down', async () => {
        const r = await fetch(`http://${ip}:${proxyPort}/hello`);
        return r.status === 503;
      });
    } finally {
      await haproxy.stop();
      app.close();
    }
  });
});

describe('consul-template renders from a real Consul catalog', () => {
  let consul: ConsulDev;
  let dir: string;

  beforeAll(async () => {
    consul = await startConsulDev();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ct-'));
  });
  afterAll(async () => {
    await consul?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('rewrites its output when a healthy backend registers', async () => {
    const template = path.join(dir, 'servers.ctmpl');
    const out = path.join(dir, 'servers.txt');
    await writeFile(
      template,
      '{{ range service "backend" }}server {{ .Node }} {{ .Address }}:{{ .Port }}\n{{ end }}',
    );
    const config = path.join(dir, 'config.hcl');
    await writeFile(
      config,
      [
        `consul { address = "${consul.ip}:8500" }`,
        'wait { min = "100ms" max = "500ms" }',
        `template { source = "${template}" destination = "${out}" }`,
      ].join('\n'),
    );
    const ct = await startProcess({
      name: 'consul-template',
      command: toolPath('consul-template'),
      args: [`-config=${config}`],
      // The token travels in the environment, never on a command line.
      env: { ...process.env, CONSUL_HTTP_TOKEN: consul.token },
      ready: async () => (await readFile(out, 'utf8').catch(() => undefined)) !== undefined,
    });
    try {
      expect(await readFile(out, 'utf8')).toBe('');
      await consul.agent.consul.catalog.register({
        node: 'backend-1',
        address: '127.0.0.51',
        service: { service: services.backend.name, port: services.backend.port },
      });
      const rendered = await waitFor('the rendered server line', async () => {
        const text = await readFile(out, 'utf8');
        return text.includes('backend-1') ? text : undefined;
      });
      expect(rendered).toBe('server backend-1 127.0.0.51:8080\n');
    } finally {
      await ct.stop();
    }
  });
});
