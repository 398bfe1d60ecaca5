/** Shared by the routing attack tests: boot a VM of a role, as a MIG would, whose seat an attack takes. */
import { randomInt } from 'node:crypto';
import { createServer, type Server } from 'node:http';

import { launchInstance, type LocalInstance, type Role } from '../../infra-scripts/local/instance';
import type { MetadataServer } from '../../infra-scripts/local/metadata-server';
import type { ConsulCluster } from '../harness';
import { bootAttributes, roleTokens } from '../integration/system-support';

export const randomInstanceId = () => `${randomInt(1, 9)}${String(randomInt(0, 1e9)).padStart(9, '0')}`;

export interface Seat {
  instance: LocalInstance;
  ip: string;
  metadataHost: string;
}

export type Boot = (role: Role, name: string, host: number, extra?: Record<string, string>) => Promise<Seat>;

/**
 * Boots instances at `<prefix>.<host>` in `zone` of project `attack-project` (the jwt auth method
 * trusts `md`'s identity tokens for it), each instance's output into `logs`, each kept in `instances`.
 */
export function seatBooter(o: {
  cluster: ConsulCluster;
  md: MetadataServer;
  prefix: string;
  zone: string;
  instances: LocalInstance[];
  logs: string[];
}): Boot {
  let tokens: ReturnType<typeof roleTokens> | undefined;
  return async (role, name, host, extra = {}) => {
    const ip = `${o.prefix}.${host}`;
    tokens ??= roleTokens(o.cluster, o.md, 'attack-project');
    const metadataHost = await o.md.addInstance({
      id: randomInstanceId(),
      name,
      zone: o.zone,
      ip,
      projectId: 'attack-project',
      projectNumber: '777',
      attributes: {
        ...bootAttributes(o.cluster, await tokens, role, { zone: o.zone, projectNumber: '777' }),
        ...extra,
      },
    });
    const onOutput = (unit: string, chunk: string) => void o.logs.push(`[${name} ${unit}] ${chunk}`);
    const instance = await launchInstance({ role, ip, metadataHost, onOutput });
    o.instances.push(instance);
    return { instance, ip, metadataHost };
  };
}

/** Listeners the attacker runs, each answering `body` as JSON and counting the connections it gets. */
export function attackerListeners() {
  const servers: Server[] = [];
  /** Connections by `ip:port`. */
  const stolen = new Map<string, number>();
  const listen = async (ip: string, port: number, body: object, headers: Record<string, string> = {}) => {
    const key = `${ip}:${port}`;
    stolen.set(key, 0);
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    });
    server.on('connection', () => stolen.set(key, (stolen.get(key) ?? 0) + 1));
    await new Promise<void>((resolve) => server.listen(port, ip, resolve));
    servers.push(server);
  };
  const close = () => Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return { listen, stolen, close };
}
