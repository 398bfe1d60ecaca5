/**
 * The whole system on one machine: 3 Consul servers, the Pub/Sub emulator, the metadata server, the
 * Compute + Monitoring emulator whose MIGs run real role instances (backend and haproxy in 2 zones
 * with autoscalers, a frontend), a metrics agent feeding the autoscalers from HAProxy's stats, the
 * orchestrator's functions in the Functions Framework behind the push bridge, and a scheduler.
 * Used by `npm start` (start.ts), the scenarios and the e2e tests.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { z } from 'zod';
import type { Logger } from '../../../shared/logging';
import { startComputeEmulator, pubsubSink, type RunningEmulator } from '../compute-emulator';
import type { Caller } from '../compute-emulator/emulator';
import { LauncherDriver } from '../compute-emulator/launcher-driver';
import type { Instance } from '../compute-emulator/state';
import {
  type ConsulCluster,
  type ManagedProcess,
  type PubsubEmulator,
  freePort,
  repoRoot,
  startConsulCluster,
  startProcess,
  startPubsubEmulator,
  tcpOpen,
  toolPath,
  waitFor,
} from '../launch';
import { haproxyCommand, parseRuntime } from '../../../services/haproxy-sync/runtime';
import { createMetadataServer, type MetadataServer } from '../metadata-server';
import { type PushBridge, startPushBridge } from '../push-bridge';
import { type ActionLog, consulView, startStatusPage, type StatusPage } from '../status-page/server';

export const sandboxProject = 'sandbox-project';
export const sandboxZones = ['us-central1-a', 'us-central1-b'];
export const sandboxRegion = 'us-central1';
export const sandboxRoles = ['backend', 'haproxy', 'frontend'] as const;
export type SandboxRole = (typeof sandboxRoles)[number];
export const topics = ['instance-events', 'scaling-alerts', 'health-sweep'] as const;
export const metrics = {
  backendRate: 'custom.googleapis.com/ilb/backend/request_rate',
  haproxyRate: 'custom.googleapis.com/ilb/haproxy/request_rate',
};

/** The functions the sandbox runs when they exist in dist/, and the topic that triggers each. */
const functionCatalog = [
  { dir: 'instance-events', target: 'instanceEvents', topic: 'instance-events' },
  { dir: 'scaling-alerts', target: 'scalingAlerts', topic: 'scaling-alerts' },
  { dir: 'health-sweep', target: 'healthSweep', topic: 'health-sweep' },
] as const;

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
  actions: ActionLog;
  /** Publishes to a sandbox topic, as Cloud Scheduler or a monitoring channel would. */
  publish(topic: (typeof topics)[number], data: unknown): Promise<string>;
  functions: string[];
  startupMs: number;
  stop(): Promise<void>;
}

const caller: Caller = { userAgent: 'sandbox-setup' };

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const started = Date.now();
  const { logger } = options;
  const say = options.progress ?? ((line: string) => logger.info(line));
  const prefix = options.prefix ?? '127.0.10';
  const [a, b, c] = prefix.split('.').map(Number) as [number, number, number];
  const instancePrefix = `${a}.${b}.${(c + 1) % 256}.`;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((err: unknown) => logger.warn({ err }, 'stop step failed'));
  };

  try {
    say('[1/7] starting 3 Consul servers');
    const consul = await startConsulCluster({ servers: 3, prefix });
    stops.push(() => consul.stop());
    // Least privilege, as in production: the management token only sets up ACLs (and is printed
    // for the operator); instances get their role's tokens, the functions their own.
    const roleTokens = await setupRoleTokens(consul);
    const instanceEventsToken = await instanceEventsFunctionToken(consul);

    say('[2/7] starting the Pub/Sub emulator');
    const pubsub = await startPubsubEmulator({ host: `${prefix}.1`, port: 8085 });
    stops.push(() => pubsub.stop());
    const client = new PubSub({ projectId: sandboxProject, apiEndpoint: pubsub.host, emulatorMode: true });
    stops.push(() => client.close());
    for (const t of topics) await client.createTopic(t);

    say('[3/7] starting the metadata server and the Compute + Monitoring emulator');
    const md: MetadataServer = createMetadataServer({ port: 9169 });
    stops.push(() => md.stop());
    const sink = pubsubSink({
      projectId: sandboxProject,
      topic: 'instance-events',
      emulatorHost: pubsub.host,
    });
    stops.push(() => sink.close());
    const driver = new LauncherDriver({
      metadata: md,
      logger,
      shutdownTimeoutMs: 30_000,
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
      addressPrefix: instancePrefix,
      port: options.computePort ?? 0,
      shutdownTimeoutMs: 30_000,
      operationDelayMs: 200,
      reconcileIntervalMs: 2000,
      autoscaleIntervalMs: 5000,
      stabilizationSec: options.stabilizationSec ?? 60,
      restartDelayMs: 8000,
    });
    stops.push(() => compute.stop());
    seed(compute, roleTokens);

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
    const fnRoutes: { topic: string; subscription: string; url: string }[] = [];
    const functions: string[] = [];
    for (const f of functionCatalog) {
      const source = path.join(repoRoot(), 'dist/functions', f.dir, 'index.js');
      if (!existsSync(source)) continue;
      const port = await freePort();
      const proc: ManagedProcess = await startProcess({
        name: `function ${f.target}`,
        command: process.execPath,
        args: [
          path.join(repoRoot(), 'node_modules/@google-cloud/functions-framework/build/src/main.js'),
          `--target=${f.target}`,
          '--signature-type=cloudevent',
          `--source=${source}`,
          `--port=${port}`,
        ],
        env: {
          ...envWithoutConsulToken(),
          GOOGLE_CLOUD_PROJECT: sandboxProject,
          CONSUL_HTTP_ADDR: consul.servers[0]!.httpAddr,
          ...functionConsulToken(f.target, instanceEventsToken),
          COMPUTE_API_ENDPOINT: compute.url,
          METADATA_SERVER_DETECTION: 'none',
        },
        ready: () => tcpOpen('127.0.0.1', port),
        onOutput: (chunk) => recordActions(actions, f.target, chunk),
      });
      stops.push(() => proc.stop());
      functions.push(f.target);
      fnRoutes.push({
        topic: f.topic,
        subscription: `eventarc-${f.topic}`,
        url: `http://127.0.0.1:${port}/`,
      });
    }
    const bridge: PushBridge = await startPushBridge({
      projectId: sandboxProject,
      emulatorHost: pubsub.host,
      logger,
      routes: fnRoutes,
    });
    stops.push(() => bridge.stop());
    const publish = async (topic: (typeof topics)[number], data: unknown) =>
      client.topic(topic).publishMessage({ json: data });
    // Cloud Scheduler's job: a sweep every minute.
    const scheduler = setInterval(
      () => void publish('health-sweep', { source: 'scheduler' }).catch(() => undefined),
      60_000,
    );
    stops.push(async () => clearInterval(scheduler));

    const frontendUrl = () => {
      const f = emu.allInstances().find((i) => i.labels.role === 'frontend' && i.status === 'RUNNING');
      return f ? `http://${f.networkIP}:80/` : undefined;
    };
    const haproxyStatsUrls = () =>
      emu
        .allInstances()
        .filter((i) => i.labels.role === 'haproxy' && i.status === 'RUNNING')
        .map((i) => `http://${i.networkIP}:8404/stats`);

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
    // "Up" means what the status page will show: every instance a Consul node with all checks passing.
    await waitFor(
      'every running instance to be a healthy Consul node',
      async () => {
        const { nodes } = await consulView(consul);
        return emu
          .allInstances()
          .filter((i) => i.status === 'RUNNING')
          .every((i) => {
            const node = nodes.find((n) => n.name === i.name);
            return node?.meta['gce-instance-id'] === i.id && node.checks.every((c) => c.status === 'passing');
          });
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );

    say('[7/7] starting the status page');
    const status: StatusPage = await startStatusPage({
      port: options.statusPort ?? 8088,
      compute,
      consul,
      actions,
      bridge,
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
      actions,
      publish,
      functions,
      startupMs: Date.now() - started,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

type RoleTokens = Record<SandboxRole | `${SandboxRole}-default`, string>;

/**
 * Runs the operator's packer/consul/files/acl-setup.sh against the sandbox's cluster with the
 * management token: per role an agent token `<role>` and a read-only `<role>-default` token.
 */
async function setupRoleTokens(consul: ConsulCluster): Promise<RoleTokens> {
  const { stdout } = await promisify(execFile)(
    'bash',
    [path.join(repoRoot(), 'packer/consul/files/acl-setup.sh')],
    {
      env: {
        ...envWithoutConsulToken(),
        PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
        CONSUL_HTTP_ADDR: consul.servers[0]!.httpAddr,
        CONSUL_HTTP_TOKEN: consul.token,
      },
    },
  );
  const schema = z.object(
    Object.fromEntries(sandboxRoles.flatMap((r) => [r, `${r}-default`].map((k) => [k, z.guid()]))),
  );
  return schema.parse(JSON.parse(stdout)) as RoleTokens;
}

/** A token holding only infra-scripts/acl/instance-events.hcl, as the deployed instanceEvents gets. */
async function instanceEventsFunctionToken(consul: ConsulCluster): Promise<string> {
  const server = consul.servers[0]!;
  const rules = await readFile(path.join(repoRoot(), 'infra-scripts/acl/instance-events.hcl'), 'utf8');
  const policy = await server.request('PUT', '/v1/acl/policy', { Name: 'instance-events', Rules: rules });
  if (!policy.ok)
    throw new Error(`creating the instance-events policy: ${policy.status} ${await policy.text()}`);
  const token = await server.request('PUT', '/v1/acl/token', {
    Description: 'fn instanceEvents',
    Policies: [{ Name: 'instance-events' }],
  });
  if (!token.ok) throw new Error(`creating the instanceEvents token: ${token.status} ${await token.text()}`);
  return z.object({ SecretID: z.guid() }).parse(await token.json()).SecretID;
}

/** This process's environment minus a Consul token the operator may have exported (the management one). */
function envWithoutConsulToken(): NodeJS.ProcessEnv {
  const { CONSUL_HTTP_TOKEN: _token, CONSUL_HTTP_TOKEN_FILE: _file, ...env } = process.env;
  return env;
}

/** Each function's Consul token: its own least-privilege one; none (anonymous) without a policy. */
function functionConsulToken(target: string, instanceEventsToken: string): Record<string, string> {
  return target === 'instanceEvents' ? { CONSUL_HTTP_TOKEN: instanceEventsToken } : {};
}

/** Templates, MIGs and autoscalers, as the deploy scripts create them in a project. */
function seed(compute: RunningEmulator, tokens: RoleTokens): void {
  const emu = compute.emulator;
  const region = { kind: 'regions' as const, name: sandboxRegion };
  // MIG base instance names start with the role: the role tokens' node rules are `<role>-` prefixes.
  for (const role of sandboxRoles) {
    emu.addTemplate(`${role}-tmpl`, {
      machineType: 'e2-small',
      labels: { role },
      tags: { items: [role] },
      metadata: {
        items: [
          { key: 'ilb-role', value: role },
          { key: 'consul-agent-token', value: tokens[role] },
          { key: 'consul-default-token', value: tokens[`${role}-default`] },
        ],
      },
    });
  }
  emu.insertIgm(
    region,
    { name: 'backend', baseInstanceName: 'backend', instanceTemplate: 'backend-tmpl', targetSize: 2 },
    caller,
  );
  emu.insertIgm(
    region,
    { name: 'haproxy', baseInstanceName: 'haproxy', instanceTemplate: 'haproxy-tmpl', targetSize: 2 },
    caller,
  );
  emu.insertIgm(
    { kind: 'zones', name: sandboxZones[0]! },
    { name: 'frontend', baseInstanceName: 'frontend', instanceTemplate: 'frontend-tmpl', targetSize: 1 },
    caller,
  );
  const target = (name: string) =>
    `projects/${sandboxProject}/regions/${sandboxRegion}/instanceGroupManagers/${name}`;
  emu.insertAutoscaler(
    region,
    {
      name: 'backend-autoscaler',
      target: target('backend'),
      autoscalingPolicy: {
        minNumReplicas: 2,
        maxNumReplicas: 4,
        coolDownPeriodSec: 20,
        mode: 'ON',
        customMetricUtilizations: [
          { metric: metrics.backendRate, utilizationTarget: 15, utilizationTargetType: 'GAUGE' },
        ],
      },
    },
    caller,
  );
  emu.insertAutoscaler(
    region,
    {
      name: 'haproxy-autoscaler',
      target: target('haproxy'),
      autoscalingPolicy: {
        minNumReplicas: 2,
        maxNumReplicas: 4,
        coolDownPeriodSec: 20,
        mode: 'ON',
        customMetricUtilizations: [
          { metric: metrics.haproxyRate, utilizationTarget: 60, utilizationTargetType: 'GAUGE' },
        ],
      },
    },
    caller,
  );
}

/** Pure: HAProxy's `;csv` stats as rows keyed by the header's column names. */
export function parseStatsCsv(csv: string): Record<string, string>[] {
  const [header, ...rows] = csv.trim().split('\n');
  if (!header?.startsWith('# ')) return [];
  const names = header.slice(2).split(',');
  return rows.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

/**
 * Stands in for the Ops Agent: every 5 s reads each HAProxy's stats and writes per-instance request
 * rates (haproxy frontend rate; backend server rates summed over HAProxies) as custom metrics.
 */
function startMetricsAgent(
  compute: RunningEmulator,
  driver: LauncherDriver,
  logger: Logger,
): { stop(): void } {
  const emu = compute.emulator;
  const tick = async () => {
    const instances = emu.allInstances().filter((i) => i.status === 'RUNNING');
    const haproxies = instances.filter((i) => i.labels.role === 'haproxy');
    const backendRate = new Map<string, number>();
    const series: unknown[] = [];
    const now = new Date().toISOString();
    const point = (value: number) => [{ interval: { endTime: now }, value: { doubleValue: value } }];
    const resource = (i: Instance) => ({
      type: 'gce_instance',
      labels: { instance_id: i.id, zone: i.zone, project_id: sandboxProject },
    });
    for (const h of haproxies) {
      const res = await fetch(`http://${h.networkIP}:8404/stats;csv`, {
        signal: AbortSignal.timeout(2000),
      }).catch(() => undefined);
      if (!res?.ok) continue;
      const rows = parseStatsCsv(await res.text());
      const front = rows.find((r) => r.pxname === 'internal' && r.svname === 'FRONTEND');
      series.push({
        metric: { type: metrics.haproxyRate },
        resource: resource(h),
        points: point(Number(front?.req_rate ?? front?.rate ?? 0)),
      });
      // The stats CSV has no server addresses; the runtime API maps each slot to the backend it holds.
      const root = driver.rootOf(h.id);
      if (!root) continue;
      const socket = `${root}/run/haproxy/admin.sock`;
      const [state, stat] = await Promise.all([
        haproxyCommand(socket, 'show servers state backends'),
        haproxyCommand(socket, 'show stat -1 4 -1'),
      ]);
      for (const slot of parseRuntime(state, stat, 'backends')) {
        const rate = Number(rows.find((r) => r.pxname === 'backends' && r.svname === slot.name)?.rate || 0);
        backendRate.set(slot.addr, (backendRate.get(slot.addr) ?? 0) + rate);
      }
    }
    for (const be of instances.filter((i) => i.labels.role === 'backend')) {
      series.push({
        metric: { type: metrics.backendRate },
        resource: resource(be),
        points: point(backendRate.get(be.networkIP) ?? 0),
      });
    }
    if (series.length) compute.monitoring.create({ timeSeries: series });
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch((err: unknown) => logger.warn({ err }, 'metrics agent tick failed'))
      .finally(() => (busy = false));
  }, 5000);
  return { stop: () => clearInterval(timer) };
}

/** Keeps the functions' decision log lines (JSON with a `decision`) as the orchestrator's actions. */
function recordActions(actions: ActionLog, fn: string, chunk: string): void {
  for (const line of chunk.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.decision === undefined && entry.action === undefined) continue;
      actions.push({
        at: typeof entry.time === 'string' ? entry.time : new Date().toISOString(),
        function: fn,
        decision: String(entry.decision ?? entry.action),
        message: String(entry.message ?? ''),
        detail: entry,
      });
      if (actions.length > 200) actions.splice(0, actions.length - 200);
    } catch {
      // Not a log line of ours.
    }
  }
}
