import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface GracefulServer {
  server: Server;
  /** Resolves once listening; returns the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting, lets in-flight requests finish, closes keep-alive connections, resolves when idle. */
  shutdown(graceMs?: number): Promise<void>;
}

/** An HTTP server whose shutdown never cuts a request it has started answering. */
export function createGracefulServer(handler: Handler, onError: (err: unknown) => void): GracefulServer {
  let closing = false;
  const pending = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    // Once closing, tell keep-alive clients (HAProxy) to stop reusing this connection.
    if (closing) res.setHeader('Connection', 'close');
    else {
      pending.add(res);
      res.once('finish', () => pending.delete(res)).once('close', () => pending.delete(res));
    }
    handler(req, res).catch((err: unknown) => {
      onError(err);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.keepAliveTimeout = 65_000;

  return {
    server,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    shutdown(graceMs = 25_000) {
      closing = true;
      for (const res of pending) if (!res.headersSent) res.setHeader('Connection', 'close');
      return new Promise((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
        deadline.unref();
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(text);
}

/** The request target as a URL, or null when it is none (`//[` reaches the handler): a 400, not a 500. */
export function requestUrl(req: IncomingMessage, base: string): URL | null {
  try {
    return new URL(req.url ?? '/', base);
  } catch {
    return null;
  }
}
