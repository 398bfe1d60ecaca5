import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Logger } from '../../shared/logging';
import type { ConsulNodeIdentity } from '../lib/consul-identity';
import type { InstanceIdentity } from '../lib/gce-metadata';
import { requestUrl, sendJson } from '../lib/graceful-server';

export interface BackendDeps {
  instance: () => Promise<InstanceIdentity>;
  consulNode: () => Promise<ConsulNodeIdentity>;
  logger: Logger;
}

/** The JSON body of `GET /`: the contract the frontend and the tests read. */
export interface BackendReport {
  instance: InstanceIdentity;
  /** Null when the local agent cannot be asked; the instance answer is still useful. */
  consul: ConsulNodeIdentity | null;
  servedAt: string;
}

export function createBackendHandler(deps: BackendDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // POST answers like GET (its body is read and discarded): it lets the failure suite count
    // requests that HAProxy must never replay.
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, HEAD, POST' }).end();
      return;
    }
    req.resume();
    const path = requestUrl(req, 'http://backend')?.pathname;
    if (path === undefined) {
      sendJson(res, 400, { error: 'invalid request target' });
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== '/') {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    let instance: InstanceIdentity;
    try {
      instance = await deps.instance();
    } catch (err) {
      deps.logger.error({ err }, 'metadata server unavailable');
      sendJson(res, 503, { error: 'instance metadata unavailable' });
      return;
    }
    const consul = await deps.consulNode().catch((err: unknown) => {
      deps.logger.warn({ err }, 'consul agent unavailable');
      return null;
    });
    const report: BackendReport = { instance, consul, servedAt: new Date().toISOString() };
    sendJson(res, 200, report);
  };
}
