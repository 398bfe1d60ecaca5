/**
 * What the instanceEvents integration tests add to the harness: the function's least-privilege
 * token from the policy file, catalog helpers, and a tiny stand-in for Google's Compute edge
 * answering `instances.get`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type ConsulAgent } from '../harness';

export const policyFile = path.resolve(__dirname, '../../infra-scripts/acl/instance-events.hcl');

async function ok(res: Promise<Response>, what: string): Promise<string> {
  const r = await res;
  const text = await r.text();
  if (!r.ok) throw new Error(`${what}: ${r.status} ${text}`);
  return text;
}

/** Creates the instance-events policy from its file and a token holding only it. */
export async function functionToken(server: ConsulAgent): Promise<string> {
  const rules = readFileSync(policyFile, 'utf8');
  await ok(server.request('PUT', '/v1/acl/policy', { Name: 'instance-events', Rules: rules }), 'policy');
  const token = await ok(
    server.request('PUT', '/v1/acl/token', { Policies: [{ Name: 'instance-events' }] }),
    'token',
  );
  return (JSON.parse(token) as { SecretID: string }).SecretID;
}

/** Registers a catalog node (no agent behind it), as a departed instance leaves behind. */
export async function registerNode(
  server: ConsulAgent,
  name: string,
  meta: Record<string, string>,
  address = '10.200.0.1',
): Promise<void> {
  await ok(
    server.request('PUT', '/v1/catalog/register', {
      Node: name,
      Address: address,
      NodeMeta: meta,
      Service: { Service: 'backend', Port: 8080, Tags: [meta['gce-zone'] ?? 'us-central1-f'] },
    }),
    `register ${name}`,
  );
}

export async function catalogNode(
  server: ConsulAgent,
  name: string,
): Promise<{ Node: { Meta: Record<string, string>; ModifyIndex: number } } | null> {
  const text = await ok(server.request('GET', `/v1/catalog/node/${name}`), `node ${name}`);
  return JSON.parse(text) as { Node: { Meta: Record<string, string>; ModifyIndex: number } } | null;
}

export async function nodeChecks(
  server: ConsulAgent,
  name: string,
): Promise<{ CheckID: string; Status: string; Notes: string }[]> {
  const text = await ok(server.request('GET', `/v1/health/node/${name}`), `checks ${name}`);
  return JSON.parse(text) as { CheckID: string; Status: string; Notes: string }[];
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
