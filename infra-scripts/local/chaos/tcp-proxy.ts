/**
 * A TCP proxy that can be cut: while cut, it stops listening and resets every open connection, so its
 * clients see refused connections, as when a network path to a service is gone. The failure suite
 * puts one between the functions and Consul.
 *
 *   const proxy = await startTcpProxy({ listenHost: '127.0.0.1', target: { host, port } });
 *   await proxy.cut(); ...; await proxy.restore(); await proxy.stop();
 */
import { createServer, type Server, type Socket, connect } from 'node:net';

export interface TcpProxy {
  host: string;
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

export async function startTcpProxy(options: {
  listenHost: string;
  /** 0 picks a free port; the proxy keeps it across cut/restore. */
  listenPort?: number;
  target: { host: string; port: number };
}): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;

  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        accepted++;
        const upstream = connect(options.target.port, options.target.host);
        open.add(client).add(upstream);
        const close = () => {
          client.destroy();
          upstream.destroy();
          open.delete(client);
          open.delete(upstream);
        };
        client.on('error', close).on('close', close);
        upstream.on('error', close).on('close', close);
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, options.listenHost, () => resolve(s));
    });

  server = await listen(options.listenPort ?? 0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
  const port = address.port;

  const close = async () => {
    const s = server;
    server = undefined;
    for (const socket of open) socket.resetAndDestroy();
    open.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  return {
    host: options.listenHost,
    port,
    cut: close,
    async restore() {
      server ??= await listen(port);
    },
    connections: () => accepted,
    stop: close,
  };
}
