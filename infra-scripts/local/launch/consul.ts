import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createConsulClient, type CallOptions, type ConsulClient } from '../../../shared/consul';
import { consulHttpPort, nodeMetaKeys } from '../../../shared/contract';
import { randomLoopbackPrefix, waitFor } from './net';
import { startProcess, type ManagedProcess, type ProcessSpec } from './process';
import { toolPath } from './tools';

/** Consul's default ports; every agent has an address of its own, so they never collide. */
export const CONSUL_HTTP_PORT = consulHttpPort;
export const CONSUL_DNS_PORT = 8600;

export interface AclTokens {
  /** The bootstrap (initial management) token: full rights, for setup and tests only. */
  management: string;
  /** The agent's own token (node registration, anti-entropy). */
  agent: string;
  /** Token for requests without one, DNS included: read-only on nodes and services. */
  dns: string;
}

export interface ConsulAgentOptions {
  nodeName: string;
  ip: string;
  server: boolean;
  /** Agent `-dev` mode: a single in-memory server. */
  dev?: boolean;
  bootstrapExpect?: number;
  retryJoin?: string[];
  nodeMeta?: Record<string, string>;
  tokens: AclTokens;
  gossipKey?: string;
  /** Extra agent configuration merged over the defaults (Consul's JSON config keys). */
  extraConfig?: Record<string, unknown>;
  /** Further config dirs loaded after ours, e.g. a role's /etc/consul.d from packer/. */
  configDirs?: string[];
  onOutput?: (chunk: string) => void;
}

/** Harness calls poll in loops of their own: one short attempt each. */
const harnessCall = { timeoutMs: 5_000, retries: 0 };

/** Whether the agent knows a leader; false while it does not answer. */
export const hasLeader = async (consul: ConsulClient): Promise<boolean> =>
  (await consul.status.leader().catch(() => '')) !== '';

/** A one-off client for an agent that may not be up yet: one short attempt, no idle sockets. */
export const agentProbe = (ip: string): ConsulClient =>
  createConsulClient({
    baseUrl: `http://${ip}:${CONSUL_HTTP_PORT}`,
    timeoutMs: 1_000,
    retries: 0,
    keepAlive: false,
  });

export class ConsulAgent {
  readonly httpAddr: string;
  readonly dns: { host: string; port: number };
  private readonly clients = new Map<string, ConsulClient>();

  constructor(
    readonly options: ConsulAgentOptions,
    private current: ManagedProcess,
    readonly dataDir: string,
    private readonly spec: ProcessSpec,
  ) {
    this.httpAddr = `http://${options.ip}:${CONSUL_HTTP_PORT}`;
    this.dns = { host: options.ip, port: CONSUL_DNS_PORT };
  }

  get process(): ManagedProcess {
    return this.current;
  }

  /** Starts a killed agent again from its data dir, as a rebooted machine would, until it sees a leader. */
  async restart(): Promise<void> {
    if (this.current.running) throw new Error(`${this.name} is still running`);
    this.current = await startProcess({ ...this.spec, name: `${this.spec.name} (restarted)` });
    await waitFor(`${this.name} to see a leader after its restart`, () => hasLeader(this.consul));
  }

  /** This agent through the project's Consul layer, with the management token. */
  get consul(): ConsulClient {
    return this.client();
  }

  /** This agent through the project's Consul layer with another token (or call options). */
  client(token = this.options.tokens.management, options: CallOptions = harnessCall): ConsulClient {
    const key = `${token}/${options.timeoutMs}/${options.retries}`;
    let client = this.clients.get(key);
    if (!client) {
      client = createConsulClient({
        baseUrl: this.httpAddr,
        token,
        timeoutMs: options.timeoutMs ?? harnessCall.timeoutMs,
        retries: options.retries ?? harnessCall.retries,
      });
      this.clients.set(key, client);
    }
    return client;
  }

  get name(): string {
    return this.options.nodeName;
  }

  get ip(): string {
    return this.options.ip;
  }

  private closeClients(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /** Graceful: the agent leaves the cluster (SIGINT), then its data is removed. */
  async stop(): Promise<void> {
    this.closeClients();
    await this.process.stop('SIGINT');
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Abrupt, as a crash or preemption: no leave; the data dir stays for a restart. */
  async kill(): Promise<void> {
    this.closeClients();
    await this.process.kill();
  }
}

export function gossipKey(): string {
  return randomBytes(32).toString('base64');
}

export function aclTokens(): AclTokens {
  // The harness's agents use the management token as agent token; the images use per-role tokens.
  const management = randomUUID();
  return { management, agent: management, dns: randomUUID() };
}

export async function startConsulAgent(options: ConsulAgentOptions): Promise<ConsulAgent> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `consul-${options.nodeName}-`));
  const config = {
    node_name: options.nodeName,
    datacenter: 'dc1',
    data_dir: dataDir,
    bind_addr: options.ip,
    advertise_addr: options.ip,
    client_addr: options.ip,
    server: options.server,
    ...(options.bootstrapExpect ? { bootstrap_expect: options.bootstrapExpect } : {}),
    ...(options.retryJoin ? { retry_join: options.retryJoin, retry_interval: '1s' } : {}),
    node_meta: options.nodeMeta ?? {},
    ...(options.gossipKey ? { encrypt: options.gossipKey } : {}),
    acl: {
      enabled: true,
      default_policy: 'deny',
      down_policy: 'extend-cache',
      enable_token_persistence: true,
      tokens: {
        ...(options.server ? { initial_management: options.tokens.management } : {}),
        agent: options.tokens.agent,
        default: options.tokens.dns,
      },
    },
    performance: { raft_multiplier: 1 },
    disable_update_check: true,
    log_level: 'warn',
    log_json: true,
    ...options.extraConfig,
  };
  const configFile = path.join(dataDir, 'harness.json');
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

  const args = ['agent', ...(options.dev ? ['-dev'] : []), `-config-file=${configFile}`];
  for (const dir of options.configDirs ?? []) args.push(`-config-dir=${dir}`);
  const probe = agentProbe(options.ip);
  const spec: ProcessSpec = {
    name: `consul ${options.nodeName}`,
    command: toolPath('consul'),
    args,
    onOutput: options.onOutput,
    stopTimeoutMs: 15_000,
    readyTimeoutMs: 60_000,
    // Up once the HTTP API answers; cluster readiness (leader, ACLs) is checked by the caller.
    ready: async () => {
      await probe.status.leader();
      return true;
    },
  };
  return new ConsulAgent(options, await startProcess(spec), dataDir, spec);
}

/** Waits until the cluster has a leader and ACLs accept the management token, then sets up DNS reads. */
async function waitUntilServing(agent: ConsulAgent, tokens: AclTokens): Promise<void> {
  const consul = agent.consul;
  await waitFor(`Consul leader via ${agent.name}`, () => hasLeader(consul));
  await waitFor(`Consul ACLs via ${agent.name}`, async () =>
    consul.acl.self().then(
      () => true,
      () => false,
    ),
  );
  // DNS answers with the agents' default token: read-only on nodes and services, nothing else.
  await consul.acl.createPolicy(
    'dns-read',
    'node_prefix "" { policy = "read" }\nservice_prefix "" { policy = "read" }',
  );
  await consul.acl.createToken({
    secretId: tokens.dns,
    description: 'anonymous DNS reads',
    policies: ['dns-read'],
  });
}

export interface ConsulDev {
  agent: ConsulAgent;
  ip: string;
  httpAddr: string;
  dns: { host: string; port: number };
  /** The management (bootstrap) token. */
  token: string;
  tokens: AclTokens;
  stop(): Promise<void>;
}

/** A single dev-mode Consul server with ACLs enabled (default deny) on its own loopback address. */
export async function startConsulDev(options: { ip?: string; nodeName?: string } = {}): Promise<ConsulDev> {
  const tokens = aclTokens();
  const agent = await startConsulAgent({
    nodeName: options.nodeName ?? 'consul-dev',
    ip: options.ip ?? `${randomLoopbackPrefix()}.1`,
    server: true,
    dev: true,
    tokens,
  });
  try {
    await waitUntilServing(agent, tokens);
  } catch (error) {
    await agent.stop();
    throw error;
  }
  return {
    agent,
    ip: agent.ip,
    httpAddr: agent.httpAddr,
    dns: agent.dns,
    token: tokens.management,
    tokens,
    stop: () => agent.stop(),
  };
}

export interface ClientOptions {
  nodeName: string;
  nodeMeta?: Record<string, string>;
  ip?: string;
  configDirs?: string[];
  extraConfig?: Record<string, unknown>;
  agentToken?: string;
}

export class ConsulCluster {
  readonly clients: ConsulAgent[] = [];
  private nextClientHost = 10;

  constructor(
    readonly prefix: string,
    readonly servers: ConsulAgent[],
    readonly tokens: AclTokens,
    readonly gossipKey: string,
  ) {}

  get token(): string {
    return this.tokens.management;
  }

  get joinAddrs(): string[] {
    return this.servers.map((s) => s.ip);
  }

  /**
   * Reads through the first live server that answers, as a client configured with every server's
   * address would: the way to read a cluster that may be losing a server. Throws the last failure.
   */
  async read<T>(read: (consul: ConsulClient) => Promise<T>): Promise<T> {
    let failure: unknown = new Error('no Consul server is running');
    for (const server of this.servers.filter((s) => s.process.running)) {
      try {
        return await read(server.consul);
      } catch (err) {
        failure = err;
      }
    }
    throw failure;
  }

  /** The server currently leading, as seen by any live server. */
  async leader(): Promise<ConsulAgent> {
    return waitFor('a Consul leader', async () => {
      const leader = await this.read(async (consul) => {
        const address = await consul.status.leader();
        // A server that knows no leader yet is no answer: ask the next.
        if (!address) throw new Error('no leader known');
        return address;
      }).catch(() => '');
      return this.servers.find((s) => s.ip === leader.split(':')[0]);
    });
  }

  /** A client agent that joins the servers, on the next free address of this cluster's prefix. */
  async startClient(options: ClientOptions): Promise<ConsulAgent> {
    const agent = await startConsulAgent({
      nodeName: options.nodeName,
      ip: options.ip ?? `${this.prefix}.${this.nextClientHost++}`,
      server: false,
      retryJoin: this.joinAddrs,
      nodeMeta: options.nodeMeta,
      gossipKey: this.gossipKey,
      tokens: { ...this.tokens, agent: options.agentToken ?? this.tokens.agent },
      configDirs: options.configDirs,
      extraConfig: options.extraConfig,
    });
    this.clients.push(agent);
    // The leader adds a joining node from gossip at once, its metadata comes with the agent's first sync.
    const wanted = Object.entries(options.nodeMeta ?? {});
    await waitFor(`${options.nodeName} in the catalog`, async () => {
      const node = await agent.consul.catalog.node(options.nodeName).catch(() => null);
      return node !== null && wanted.every(([key, value]) => node.meta[key] === value);
    });
    return agent;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.stop()));
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** Servers on `<prefix>.1..n` that bootstrap together, with ACLs (default deny) and gossip encryption. */
export async function startConsulCluster(
  options: { servers?: number; prefix?: string; onOutput?: (chunk: string) => void } = {},
): Promise<ConsulCluster> {
  const count = options.servers ?? 3;
  const prefix = options.prefix ?? randomLoopbackPrefix();
  const tokens = aclTokens();
  const key = gossipKey();
  const ips = Array.from({ length: count }, (_, i) => `${prefix}.${i + 1}`);
  const servers = await Promise.all(
    ips.map((ip, i) =>
      startConsulAgent({
        nodeName: `consul-server-${i + 1}`,
        ip,
        server: true,
        bootstrapExpect: count,
        retryJoin: ips.filter((other) => other !== ip),
        nodeMeta: { [nodeMetaKeys.role]: 'consul' },
        gossipKey: key,
        tokens,
        onOutput: options.onOutput,
      }),
    ),
  );
  const cluster = new ConsulCluster(prefix, servers, tokens, key);
  try {
    await waitUntilServing(servers[0]!, tokens);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
