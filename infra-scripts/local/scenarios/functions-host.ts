/**
 * The orchestrator's functions as Cloud Functions run them: each built function in the Functions
 * Framework with its own least-privilege Consul token, fed by the push bridge as Eventarc feeds the
 * deployed ones. Their decision log lines become the status page's "actions".
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../../shared/logging';
import type { RunningEmulator } from '../compute-emulator';
import {
  type ConsulCluster,
  freePort,
  type ManagedProcess,
  repoRoot,
  startProcess,
  tcpOpen,
} from '../launch';
import { type PushBridge, type Route, startPushBridge } from '../push-bridge';
import type { ActionLog } from '../status-page/server';
import { envWithoutConsulToken, functionToken } from './acl';
import { sandboxProject } from './topology';

export const topics = ['instance-events', 'scaling-alerts', 'health-sweep'] as const;
export type Topic = (typeof topics)[number];

/**
 * The functions the sandbox runs when they exist in dist/, the topic that triggers each and the
 * Consul policy (infra-scripts/acl/) its token holds; without one it runs anonymous.
 */
const functionCatalog: {
  dir: string;
  target: string;
  topic: Topic;
  policy?: string;
  /** A second token for force-leave alone (`operator = "write"`), held apart as in production. */
  forceLeavePolicy?: string;
}[] = [
  {
    dir: 'instance-events',
    target: 'instanceEvents',
    topic: 'instance-events',
    policy: 'instance-events',
    forceLeavePolicy: 'instance-events-force-leave',
  },
  { dir: 'scaling-alerts', target: 'scalingAlerts', topic: 'scaling-alerts' },
  { dir: 'health-sweep', target: 'healthSweep', topic: 'health-sweep' },
];

export interface FunctionsHostOptions {
  consul: ConsulCluster;
  compute: RunningEmulator;
  /** `host:port` of the Pub/Sub emulator. */
  pubsubHost: string;
  logger: Logger;
  actions: ActionLog;
  /** Where the functions reach Consul; the first server by default. */
  consulAddr?: string;
}

export interface FunctionsHost {
  /** Targets of the functions running. */
  functions: string[];
  bridge: PushBridge;
  stop(): Promise<void>;
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const { consul, compute, logger, actions } = options;
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse())
      await s().catch((err: unknown) => logger.warn({ err }, 'stop step failed'));
  };
  try {
    const routes: Route[] = [];
    const functions: string[] = [];
    for (const f of functionCatalog) {
      const source = path.join(repoRoot(), 'dist/functions', f.dir, 'index.js');
      if (!existsSync(source)) continue;
      const token = f.policy ? await functionToken(consul, f.policy, `fn ${f.target}`) : undefined;
      const forceLeaveToken = f.forceLeavePolicy
        ? await functionToken(consul, f.forceLeavePolicy, `fn ${f.target} force-leave`)
        : undefined;
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
          CONSUL_HTTP_ADDR: options.consulAddr ?? consul.servers[0]!.httpAddr,
          ...(token ? { CONSUL_HTTP_TOKEN: token } : {}),
          ...(forceLeaveToken ? { CONSUL_FORCE_LEAVE_TOKEN: forceLeaveToken } : {}),
          COMPUTE_API_ENDPOINT: compute.url,
          METADATA_SERVER_DETECTION: 'none',
        },
        ready: () => tcpOpen('127.0.0.1', port),
        onOutput: (chunk) => recordActions(actions, f.target, chunk),
      });
      stops.push(() => proc.stop());
      functions.push(f.target);
      routes.push({ topic: f.topic, subscription: `eventarc-${f.topic}`, url: `http://127.0.0.1:${port}/` });
    }
    const bridge = await startPushBridge({
      projectId: sandboxProject,
      emulatorHost: options.pubsubHost,
      logger,
      routes,
    });
    stops.push(() => bridge.stop());
    return { functions, bridge, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Keeps the functions' decision log lines (JSON with a `decision`) as the orchestrator's actions. */
export function recordActions(actions: ActionLog, fn: string, chunk: string): void {
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
