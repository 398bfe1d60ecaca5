/**
 * Real services for the instanceEvents integration tests: a Consul server with ACLs (default deny)
 * and a persistent data dir so it can be restarted, Consul client agents standing for instances,
 * and a tiny stand-in for Google's Compute edge answering `instances.get`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
export const consulBin = process.env.CONSUL_BIN ?? path.join(root, '.tools/bin/consul');
export const policyFile = path.join(root, 'infra-scripts/acl/instance-events.hcl');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A random 127.x.y.0/24 per test file, so parallel files never share an address. */
export function randomSubnet(): string {
  const octet = () => 10 + Math.floor(Math.random() * 240);
  return `127.${octet()}.${octet()}`;
}

interface AgentProcess {
  ip: string;
  httpAddr: string;
  stop(): Promise<void>;
}

export interface ClientAgent extends AgentProcess {
  /** SIGKILL: the instance vanishes without a graceful leave, like a preemption. */
  crash(): Promise<void>;
}

function launch(args: string[], dataDir: string): ChildProcess {
  return spawn(consulBin, ['agent', ...args, `-data-dir=${dataDir}`], { stdio: 'ignore' });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function consulGet(
  httpAddr: string,
  token: string,
  p: string,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`${httpAddr}${p}`, { headers: { 'x-consul-token': token } });
  return { status: res.status, body: await res.text() };
}

export async function consulPut(httpAddr: string, token: string, p: string, body?: unknown) {
  const res = await fetch(`${httpAddr}${p}`, {
    method: 'PUT',
    headers: { 'x-consul-token': token },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${p}: ${res.status} ${text}`);
  return text;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface ConsulServer extends AgentProcess {
  token: string;
  /** Token of the instance-events policy file (what the function runs with). */
  functionToken: string;
  restart(): Promise<void>;
  /** Stops the server only (for outage tests); `start()` brings it back with its data. */
  kill(): Promise<void>;
  start(): Promise<void>;
  startClient(nodeName: string, meta: Record<string, string>): Promise<ClientAgent>;
}

/** One Consul server (bootstrap-expect 1) with ACLs on, default deny, and persistent data. */
export async function startConsulServer(subnet: string): Promise<ConsulServer> {
  const ip = `${subnet}.1`;
  const httpAddr = `http://${ip}:8500`;
  const token = randomUUID();
  const dir = mkdtempSync(path.join(tmpdir(), 'ie-consul-'));
  const aclFile = path.join(dir, 'acl.hcl');
  writeFileSync(
    aclFile,
    `acl {\n enabled = true\n default_policy = "deny"\n enable_token_persistence = true\n` +
      ` tokens {\n  initial_management = "${token}"\n  agent = "${token}"\n }\n}\n`,
  );
  const serverArgs = [
    '-server',
    '-bootstrap-expect=1',
    '-node=consul-server-1',
    `-bind=${ip}`,
    `-client=${ip}`,
    '-dns-port=-1',
    '-grpc-port=-1',
    `-config-file=${aclFile}`,
  ];
  let child: ChildProcess | undefined;
  const clients: ChildProcess[] = [];
  const start = async () => {
    child = launch(serverArgs, path.join(dir, 'server'));
    await waitFor('consul leader', async () => {
      const leader = await consulGet(httpAddr, token, '/v1/status/leader');
      if (leader.body.length <= 4) return false;
      // ACL bootstrap done when the management token can read the catalog.
      return (await consulGet(httpAddr, token, '/v1/catalog/nodes')).status === 200;
    });
  };
  await start();
  const rules = readFileSync(policyFile, 'utf8');
  await consulPut(httpAddr, token, '/v1/acl/policy', { Name: 'instance-events', Rules: rules });
  const created = JSON.parse(
    await consulPut(httpAddr, token, '/v1/acl/token', { Policies: [{ Name: 'instance-events' }] }),
  ) as { SecretID: string };

  let clientCount = 1;
  return {
    ip,
    httpAddr,
    token,
    functionToken: created.SecretID,
    start,
    async kill() {
      if (child) await stopProcess(child);
    },
    async restart() {
      if (child) await stopProcess(child);
      await start();
    },
    async startClient(nodeName, meta) {
      const clientIp = `${subnet}.${++clientCount}`;
      const agentAddr = `http://${clientIp}:8500`;
      const metaArgs = Object.entries(meta).map(([k, v]) => `-node-meta=${k}:${v}`);
      const c = launch(
        [
          `-node=${nodeName}`,
          `-bind=${clientIp}`,
          `-client=${clientIp}`,
          `-retry-join=${ip}`,
          '-dns-port=-1',
          '-grpc-port=-1',
          `-config-file=${aclFile}`,
          ...metaArgs,
        ],
        path.join(dir, `client-${clientCount}`),
      );
      clients.push(c);
      await waitFor(`agent ${nodeName} in the catalog`, async () => {
        const res = await consulGet(httpAddr, token, `/v1/catalog/node/${nodeName}`);
        return res.status === 200 && res.body !== 'null';
      });
      return {
        ip: clientIp,
        httpAddr: agentAddr,
        stop: () => stopProcess(c),
        crash: async () => {
          const exited = new Promise((r) => c.once('exit', r));
          c.kill('SIGKILL');
          await exited;
        },
      };
    },
    async stop() {
      await Promise.all(clients.map(stopProcess));
      if (child) await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers a catalog node (no agent behind it), as a departed instance leaves behind. */
export async function registerNode(
  server: { httpAddr: string; token: string },
  name: string,
  meta: Record<string, string>,
  address = '10.200.0.1',
): Promise<void> {
  await consulPut(server.httpAddr, server.token, '/v1/catalog/register', {
    Node: name,
    Address: address,
    NodeMeta: meta,
    Service: { Service: 'backend', Port: 8080, Tags: [meta['gce-zone'] ?? 'us-central1-f'] },
  });
}

export async function catalogNode(
  server: { httpAddr: string; token: string },
  name: string,
): Promise<{ Node: { Meta: Record<string, string>; ModifyIndex: number } } | null> {
  const res = await consulGet(server.httpAddr, server.token, `/v1/catalog/node/${name}`);
  return JSON.parse(res.body) as { Node: { Meta: Record<string, string>; ModifyIndex: number } } | null;
}

export async function nodeChecks(
  server: { httpAddr: string; token: string },
  name: string,
): Promise<{ CheckID: string; Status: string; Notes: string }[]> {
  const res = await consulGet(server.httpAddr, server.token, `/v1/health/node/${name}`);
  return JSON.parse(res.body) as { CheckID: string; Status: string; Notes: string }[];
}

/**
 * Google's network edge for `instances.get`, as the REST API answers it: an instance JSON or a
 * 404 error body. Everything else is a 404 too, so an unexpected call fails loudly.
 */
export interface ComputeEdge {
  endpoint: string;
  instances: Map<string, { id: string; status: string }>;
  calls: string[];
  stop(): Promise<void>;
}

export async function startComputeEdge(ip: string): Promise<ComputeEdge> {
  const instances = new Map<string, { id: string; status: string }>();
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    const m = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/?]+)/.exec(req.url ?? '');
    const found = m && req.method === 'GET' ? instances.get(`${m[1]}/${m[2]}/${m[3]}`) : undefined;
    res.setHeader('content-type', 'application/json');
    if (m && found) {
      res.end(JSON.stringify({ kind: 'compute#instance', id: found.id, name: m[3], status: found.status }));
      return;
    }
    res.statusCode = 404;
    const message = `The resource '${req.url ?? ''}' was not found`;
    res.end(
      JSON.stringify({
        error: { code: 404, message, errors: [{ message, domain: 'global', reason: 'notFound' }] },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://${ip}:${port}`,
    instances,
    calls,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
