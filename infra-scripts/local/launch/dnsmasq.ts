import { Resolver } from 'node:dns/promises';
import { freePort } from './net';
import { startProcess } from './process';
import { toolPath } from './tools';

export interface Dnsmasq {
  host: string;
  port: number;
  /** A resolver that asks this dnsmasq, as a node's system resolver would. */
  resolver(): Resolver;
  stop(): Promise<void>;
}

/** dnsmasq forwarding `.consul` to a Consul agent's DNS, as the images configure it; nothing else. */
export async function startDnsmasq(options: {
  consulDns: { host: string; port: number };
  listen?: string;
  port?: number;
}): Promise<Dnsmasq> {
  const host = options.listen ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const resolver = () => {
    const r = new Resolver({ timeout: 1_000, tries: 2 });
    r.setServers([`${host}:${port}`]);
    return r;
  };
  const proc = await startProcess({
    name: 'dnsmasq',
    command: toolPath('dnsmasq'),
    args: [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      `--listen-address=${host}`,
      `--port=${port}`,
      `--server=/consul/${options.consulDns.host}#${options.consulDns.port}`,
      '--pid-file=',
      '--user=root',
      '--log-facility=-',
    ],
    readyTimeoutMs: 10_000,
    // Ready when it answers: a name under .consul that cannot exist gives NXDOMAIN from Consul.
    ready: async () => {
      try {
        await resolver().resolve4('harness-probe.node.consul');
        return true;
      } catch (error) {
        return (error as { code?: string }).code === 'ENOTFOUND';
      }
    },
  });
  return { host, port, resolver, stop: async () => void (await proc.stop()) };
}
