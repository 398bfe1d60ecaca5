/**
 * The network path between one function and Consul, as a small HTTP forwarder the scenarios can
 * degrade: with reads failing, the catalog and health reads answer 503 (a server that lost its
 * leader, or a proxy in between that cannot reach it) while sessions and KV still work. That is the
 * partial partition a sweep must survive: it takes its lock, reads half a world and must not act.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ConsulLink {
  /** `http://127.0.0.1:<port>`: the function's CONSUL_HTTP_ADDR. */
  url: string;
  /** Catalog and health reads fail (503) while on. */
  failReads(on: boolean): void;
  readonly failing: boolean;
  stop(): Promise<void>;
}

/** Pure: whether a request is one of the reads a degraded link fails. */
export function isCatalogRead(method: string | undefined, url: string | undefined): boolean {
  return method === 'GET' && /^\/v1\/(catalog|health)\//.test(url ?? '');
}

export async function startConsulLink(target: string): Promise<ConsulLink> {
  const upstream = new URL(target);
  let failing = false;
  const server = http.createServer((req, res) => {
    if (failing && isCatalogRead(req.method, req.url)) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('No cluster leader (sandbox partition)');
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    failReads(on) {
      failing = on;
    },
    get failing() {
      return failing;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
