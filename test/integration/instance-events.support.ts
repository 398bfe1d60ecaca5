/**
 * What the instanceEvents integration tests add to the harness: the function's least-privilege
 * token from the policy file, catalog helpers, and a tiny stand-in for Google's Compute edge
 * answering `instances.get`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { CatalogNodeDetail, HealthCheck } from '../../shared/consul';
import { nodeMetaKeys, services } from '../../shared/contract';
import { type ConsulAgent } from '../harness';

export const policyFile = path.resolve(__dirname, '../../infra-scripts/acl/instance-events.hcl');
export const forceLeavePolicyFile = path.resolve(__dirname, '../../infra-scripts/acl/force-leave.hcl');

/** Creates the instance-events policy from its file and a token holding only it. */
export async function functionToken(server: ConsulAgent): Promise<string> {
  await server.consul.acl.createPolicy('instance-events', readFileSync(policyFile, 'utf8'));
  return server.consul.acl.createToken({ policies: ['instance-events'] });
}

/** The separately held force-leave token, from its own policy file. */
export async function forceLeaveToken(server: ConsulAgent): Promise<string> {
  await server.consul.acl.createPolicy('force-leave', readFileSync(forceLeavePolicyFile, 'utf8'));
  return server.consul.acl.createToken({ policies: ['force-leave'] });
}

/** Registers a catalog node (no agent behind it), as a departed instance leaves behind. */
export async function registerNode(
  server: ConsulAgent,
  name: string,
  meta: Record<string, string>,
  address = '10.200.0.1',
): Promise<void> {
  await server.consul.catalog.register({
    node: name,
    address,
    nodeMeta: meta,
    service: {
      service: services.backend.name,
      port: services.backend.port,
      tags: [meta[nodeMetaKeys.zone] ?? 'us-central1-f'],
    },
  });
}

export function catalogNode(server: ConsulAgent, name: string): Promise<CatalogNodeDetail | null> {
  return server.consul.catalog.node(name);
}

export function nodeChecks(server: ConsulAgent, name: string): Promise<HealthCheck[]> {
  return server.consul.health.node(name);
}

/** A zone operation as `zoneOperations.get` answers (the fields instanceEvents reads). */
export interface EdgeOperation {
  id: string;
  operationType: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  error?: { errors: { code: string; message: string }[] };
}

/**
 * Google's network edge for `instances.get` and `zoneOperations.get`, as the REST API answers them:
 * the resource's JSON or a 404 error body. Everything else is a 404 too, so an unexpected call fails
 * loudly. Keys: `project/zone/name`.
 */
export interface ComputeEdge {
  endpoint: string;
  instances: Map<string, { id: string; status: string }>;
  operations: Map<string, EdgeOperation>;
  calls: string[];
  stop(): Promise<void>;
}

export async function startComputeEdge(ip: string): Promise<ComputeEdge> {
  const instances = new Map<string, { id: string; status: string }>();
  const operations = new Map<string, EdgeOperation>();
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    const m = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/(instances|operations)\/([^/?]+)/.exec(
      req.url ?? '',
    );
    const key = m ? `${m[1]}/${m[2]}/${m[4]}` : '';
    res.setHeader('content-type', 'application/json');
    const instance = m?.[3] === 'instances' && req.method === 'GET' ? instances.get(key) : undefined;
    if (instance) {
      res.end(
        JSON.stringify({ kind: 'compute#instance', id: instance.id, name: m?.[4], status: instance.status }),
      );
      return;
    }
    const operation = m?.[3] === 'operations' && req.method === 'GET' ? operations.get(key) : undefined;
    if (operation) {
      res.end(JSON.stringify({ kind: 'compute#operation', name: m?.[4], ...operation }));
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
    operations,
    calls,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
