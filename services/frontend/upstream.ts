import { Resolver } from 'node:dns/promises';
import { request } from 'node:http';

import type { UpstreamMethod, UpstreamResponse } from './app';

/** A resolver for `host:port` (dnsmasq or Consul DNS), or the system resolver when none is given. */
export function createResolve(dnsServer: string | undefined): (name: string) => Promise<string[]> {
  const resolver = new Resolver({ timeout: 1_000, tries: 2 });
  if (dnsServer) resolver.setServers([dnsServer]);
  return (name) => resolver.resolve4(name);
}

const maxBody = 1 << 20;

/** GET (or POST) / on one HAProxy; a fresh connection each time, so a refresh can land on another HAProxy. */
export function fetchUpstream(
  address: string,
  port: number,
  method: UpstreamMethod = 'GET',
  timeoutMs = 5_000,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port, path: '/', method, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBody) req.destroy(new Error('response too large'));
          else chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            haproxyNode: header(res.headers['x-ilb-haproxy']),
            haproxyServer: header(res.headers['x-ilb-server']),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const header = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;
