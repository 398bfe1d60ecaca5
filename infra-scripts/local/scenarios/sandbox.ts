/**
 * The whole system on one machine: 3 Consul servers, the Pub/Sub emulator, the metadata server, the
 * Compute + Monitoring emulator whose MIGs run real role instances (topology.ts), a metrics agent
 * feeding the autoscalers from HAProxy's stats (metrics-agent.ts), the orchestrator's functions
 * behind the push bridge (functions-host.ts), a scheduler and the status page. This module only
 * wires them together and decides when the sandbox is up. Used by `npm start` (start.ts), the
 * scenarios, the e2e tests and the bench.
 */
import { PubSub } from '@google-cloud/pubsub';
import { services } from '../../../shared/contract';
import type { Logger } from '../../../shared/logging';
import {
  GCE_PREEMPTION_SHUTDOWN_MS,
  startComputeEmulator,
  pubsubSink,
  type AuditFaults,
  type RunningEmulator,
} from '../compute-emulator';
import { LauncherDriver } from '../compute-emulator/launcher-driver';
import {
  type ConsulCluster,
  type PubsubEmulator,
  startConsulCluster,
  startPubsubEmulator,
  waitFor,
} from '../launch';
import { createMetadataServer, type MetadataServer } from '../metadata-server';
import { consulView, nodeStanding, type NodeStanding } from '../status-page/consul-view';
import { type ActionLog, startStatusPage, type StatusPage } from '../status-page/server';
import { setupRoleTokens } from './acl';
import type { ConsulLink } from './consul-link';
import { setupSandboxAlerting } from './alert-setup';
import { startFunctionsHost, type Topic, topics } from './functions-host';
import { startMetricsAgent } from './metrics-agent';
import { instancePrefix, sandboxProject, sandboxZones, seedTopology } from './topology';

export interface SandboxOptions {
  logger: Logger;
  /** Consul servers and the Pub/Sub emulator live on `${prefix}.1-3`; instances on the next /24. */
  prefix?: string;
  statusPort?: number;
  computePort?: number;
  /** Seconds before a group scales in after load drops (GCE: 600). */
  stabilizationSec?: number;
  /** Progress lines for people waiting (start-up takes a while). */
  progress?: (line: string) => void;
  /** Deliver audit entries as a real sink may: duplicated, out of order, late. */
  auditFaults?: AuditFaults;
  /** How often Cloud Scheduler publishes to `health-sweep` (production: every minute). */
  sweepIntervalMs?: number;
  /** The Consul address the functions get, given the first server's (the failure suite's proxy). */
  functionsConsulAddr?: (httpAddr: string) => Promise<string>;
}

export interface Sandbox {
  project: string;
  consul: ConsulCluster;
  pubsub: PubsubEmulator;
  compute: RunningEmulator;
  statusUrl: string;
  /** `status.setScenarioRunner(...)` makes `npm run scenario` reach the scenarios. */
  status: StatusPage;
  frontendUrl: () => string | undefined;
  haproxyStatsUrls: () => string[];
  /** The runtime API (admin socket) of every running HAProxy instance. */
  haproxyAdminSockets: () => string[];
  actions: ActionLog;
  /** Publishes to a sandbox topic, as Cloud Scheduler or a monitoring channel would. */
  publish(topic: Topic, data: unknown): Promise<string>;
  functions: string[];
  /** healthSweepHttp's URL (any `Authorization: Bearer …` passes: IAM is Google's part), if built. */
  sweepHttpUrl?: string;
  /** The Consul links of the functions that have one, by target (healthSweep's). */
  consulLinks: Record<string, ConsulLink>;
  /** A function's latest JSON log lines, oldest first (e.g. `healthSweep`'s sweep reports). */
  functionLogs(target: string): readonly Record<string, unknown>[];
  sweepIntervalMs: number;
  /** A running instance's root directory (its files and sockets, e.g. HAProxy's admin socket). */
  instanceRoot(id: string): string | undefined;
  startupMs: number;
  stop(): Promise<void>;
}

/** What the progress lines say when an instance had to register its node metadata again. */
export const repairNote = 'catalog lacked its node metadata after join; registered again';

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const started = Date.now();
  const { logger } = options;
  const say = options.progress ?? ((line: string) => logger.info(line));
  const prefix = options.prefix ?? '127.0.10';
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((err: unknown) => logger.warn({ err }, 'stop step failed'));
  };

  try {
    say('[1/7] starting 3 Consul servers');
    const consul = await startConsulCluster({ servers: 3, prefix });
    stops.push(() => consul.stop());

    say('[2/7] starting the Pub/Sub emulator');
    const pubsub = await startPubsubEmulator({ host: `${prefix}.1`, port: 8085 });
    stops.push(() => pubsub.stop());
    const client = new PubSub({ projectId: sandboxProject, apiEndpoint: pubsub.host, emulatorMode: true });
    stops.push(() => client.close());
    for (const t of topics) await client.createTopic(t);

    say('[3/7] starting the metadata server and the Compute + Monitoring emulator');
    const { driver, compute, md } = await startCompute(
      options,
      prefix,
      consul,
      pubsub.host,
      client,
      stops,
      say,
    );
    seedTopology(compute, await setupRoleTokens(consul, { metadata: md }), `${instancePrefix(prefix)}0/24`);

    say('[4/7] booting instances: backend and haproxy in 2 zones, a frontend (this takes a while)');
    const emu = compute.emulator;
    const total = () => emu.allIgms().reduce((n, g) => n + g.targetSize, 0);
    await waitFor(
      'every instance running',
      async () => {
        const running = emu.allInstances().filter((i) => i.status === 'RUNNING').length;
        say(`      ${running}/${total()} instances running`);
        return running >= total() && (await emu.settled(1));
      },
      { timeoutMs: 300_000, intervalMs: 3000 },
    );

    say('[5/7] starting the metrics agent and the functions');
    const agent = startMetricsAgent(compute, driver, logger);
    stops.push(async () => agent.stop());
    const actions: ActionLog = [];
    const consulAddr = await options.functionsConsulAddr?.(consul.servers[0]!.httpAddr);
    const host = await startFunctionsHost({
      consul,
      compute,
      pubsubHost: pubsub.host,
      logger,
      actions,
      consulAddr,
    });
    stops.push(() => host.stop());
    await setupSandboxAlerting(compute.url);
    const publish = async (topic: Topic, data: unknown) => client.topic(topic).publishMessage({ json: data });
    // Cloud Scheduler's job: a sweep every minute in production, every 15 s here.
    const sweepIntervalMs = options.sweepIntervalMs ?? 15_000;
    const scheduler = setInterval(
      () => void publish('health-sweep', { source: 'scheduler' }).catch(() => undefined),
      sweepIntervalMs,
    );
    stops.push(async () => clearInterval(scheduler));

    const { frontendUrl, haproxyStatsUrls, haproxyAdminSockets } = instanceEndpoints(compute, driver);

    say('[6/7] waiting for the frontend to answer through HAProxy and every node to be healthy');
    await waitFor(
      'the frontend serving a backend answer',
      async () => {
        const url = frontendUrl();
        if (!url) return false;
        const res = await fetch(`${url}?format=json`, { signal: AbortSignal.timeout(3000) });
        return res.ok && ((await res.json()) as { ok?: boolean }).ok === true;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    await waitForHealthyNodes(compute, consul, say);

    say('[7/7] starting the status page');
    const status: StatusPage = await startStatusPage({
      port: options.statusPort ?? 8088,
      compute,
      consul,
      actions,
      bridge: host.bridge,
      logger,
      links: () => ({
        frontend: frontendUrl() ?? '',
        ...Object.fromEntries(haproxyStatsUrls().map((u, i) => [`HAProxy stats ${i + 1}`, u])),
        'Consul UI': `${consul.servers.find((s) => s.process.running)?.httpAddr ?? ''}/ui`,
      }),
    });
    stops.push(() => status.stop());

    return {
      project: sandboxProject,
      consul,
      pubsub,
      compute,
      statusUrl: status.url,
      status,
      frontendUrl,
      haproxyStatsUrls,
      haproxyAdminSockets,
      actions,
      publish,
      functions: host.functions,
      ...(host.httpUrls.healthSweepHttp ? { sweepHttpUrl: host.httpUrls.healthSweepHttp } : {}),
      consulLinks: host.consulLinks,
      functionLogs: (target) => host.logs(target),
      sweepIntervalMs,
      instanceRoot: (id) => driver.rootOf(id),
      startupMs: Date.now() - started,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The metadata server and the Compute + Monitoring emulator, its instances run by the launcher
 * (real Consul agents and apps) and its audit log sunk into `instance-events`.
 */
async function startCompute(
  options: SandboxOptions,
  prefix: string,
  consul: ConsulCluster,
  pubsubHost: string,
  client: PubSub,
  stops: (() => Promise<unknown>)[],
  say: (line: string) => void,
): Promise<{ driver: LauncherDriver; compute: RunningEmulator; md: MetadataServer }> {
  const { logger } = options;
  const md: MetadataServer = createMetadataServer({ port: 9169 });
  stops.push(() => md.stop());
  const sink = pubsubSink({
    projectId: sandboxProject,
    topic: 'instance-events',
    emulatorHost: pubsubHost,
  });
  stops.push(() => sink.close());
  const driver = new LauncherDriver({
    metadata: md,
    logger,
    shutdownTimeoutMs: 30_000,
    // The agent unit's ExecStartPost repairs a node the leader registered without its metadata.
    onOutput: (instance, unit, chunk) => {
      if (unit === 'consul' && chunk.includes('lacked this node')) say(`      ${instance}: ${repairNote}`);
    },
    projectAttributes: {
      'consul-servers': consul.joinAddrs.join(' '),
      'consul-gossip-key': consul.gossipKey,
      'ilb-drain-seconds': '3',
    },
  });
  const compute = await startComputeEmulator({
    project: sandboxProject,
    zones: sandboxZones,
    driver,
    logger,
    audit: sink.write,
    addressPrefix: instancePrefix(prefix),
    port: options.computePort ?? 0,
    shutdownTimeoutMs: 30_000,
    operationDelayMs: 200,
    reconcileIntervalMs: 2000,
    autoscaleIntervalMs: 5000,
    stabilizationSec: options.stabilizationSec ?? 60,
    restartDelayMs: 8000,
    // As on GCE: a preempted VM's shutdown script gets 30 s (ACPI soft off) before it is stopped.
    preemptionShutdownMs: GCE_PREEMPTION_SHUTDOWN_MS,
    auditFaults: options.auditFaults,
    // Monitoring alerting publishes to the sandbox's topics, as its Pub/Sub channels do.
    alerting: {
      publish: (topic, data) => client.topic(topic).publishMessage({ data }),
      evaluateIntervalMs: 10_000,
    },
  });
  stops.push(() => compute.stop());
  return { driver, compute, md };
}

/** Where the running instances answer: the frontend, HAProxy's stats pages and admin sockets. */
function instanceEndpoints(compute: RunningEmulator, driver: LauncherDriver) {
  const emu = compute.emulator;
  const running = (role: string) =>
    emu.allInstances().filter((i) => i.labels.role === role && i.status === 'RUNNING');
  return {
    frontendUrl: () => {
      const f = running('frontend')[0];
      return f ? `http://${f.networkIP}:${services.frontend.port}/` : undefined;
    },
    haproxyStatsUrls: () => running('haproxy').map((i) => `http://${i.networkIP}:8404/stats`),
    haproxyAdminSockets: () =>
      running('haproxy')
        .flatMap((i) => driver.rootOf(i.id) ?? [])
        .map((root) => `${root}/run/haproxy/admin.sock`),
  };
}

/**
 * "Up" means what the status page will show: every running instance a live Consul node, all checks
 * passing, carrying its own instance id. A node without its metadata is named in the progress lines:
 * Consul's leader can register a joining member without it (consul-bootstrap.sh --confirm-node-meta).
 */
async function waitForHealthyNodes(
  compute: RunningEmulator,
  consul: ConsulCluster,
  say: (line: string) => void,
): Promise<void> {
  let last = '';
  await waitFor(
    'every running instance to be a healthy Consul node',
    async () => {
      const { nodes } = await consulView(consul);
      const waiting = compute.emulator
        .allInstances()
        .filter((i) => i.status === 'RUNNING')
        .map((i): [string, NodeStanding] => [i.name, nodeStanding(nodes, i)])
        .filter(([, standing]) => standing !== 'healthy');
      const line = waiting.map(([name, standing]) => `${name}: ${standing}`).join(', ');
      if (line && line !== last) say(`      waiting for ${line}`);
      last = line;
      return waiting.length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}
