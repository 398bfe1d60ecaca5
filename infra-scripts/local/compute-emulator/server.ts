import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../shared/logging';
import type { Alerting } from './alerting';
import { computeRoutes } from './compute-routes';
import { controlRoutes } from './control-routes';
import type { ComputeEmulator } from './emulator';
import { ApiError, notFound } from './errors';
import { MonitoringError, type TimeSeriesStore } from './monitoring';
import { monitoringRoutes } from './monitoring-routes';
import { Router } from './router';

export { snapshot } from './control-routes';

export interface ServerOptions {
  emulator: ComputeEmulator;
  monitoring: TimeSeriesStore;
  alerting?: Alerting;
  logger: Logger;
  host?: string;
  port?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves the Compute v1 subset, the Monitoring `timeSeries` subset and the emulator controls. */
export async function serve(options: ServerOptions): Promise<RunningServer> {
  const { emulator, monitoring, logger } = options;
  const router = new Router([
    ...computeRoutes(emulator),
    ...monitoringRoutes(monitoring, options.alerting),
    ...controlRoutes(emulator),
  ]);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    let status = 200;
    let payload: unknown;
    try {
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        throw new ApiError(400, 'badRequest', 'Invalid JSON payload received.');
      }
      const path = url.pathname;
      const hit = router.match(method, path);
      if (!hit) throw notFound(path.replace(/^\/compute\/v1\//, ''));
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      payload = await hit.route.handler({
        method,
        params: hit.params,
        query,
        body,
        caller: { userAgent: String(req.headers['user-agent'] ?? '') },
      });
    } catch (err) {
      if (err instanceof ApiError || err instanceof MonitoringError) {
        status = err.code;
        payload = err.toJSON();
      } else {
        logger.error({ err, method, path: url.pathname }, 'request failed');
        status = 500;
        payload = new ApiError(500, 'badRequest', 'Internal error in the emulator.').toJSON();
      }
    }
    logger.debug({ method, path: url.pathname, status }, 'request');
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(payload));
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const maxBody = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        reject(new ApiError(400, 'badRequest', 'Request body too large.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
