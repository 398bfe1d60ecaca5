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
import { scalingAlertsEnv } from './alert-setup';
import { type ConsulLink, startConsulLink } from './consul-link';
import { healthSweepConfig, sandboxProject } from './topology';

export const topics = ['instance-events', 'scaling-alerts', 'health-sweep'] as const;
export type Topic = (typeof topics)[number];

interface FunctionEntry {
  dir: string;
  target: string;
  topic: Topic;
  policy?: string;
  /** A second token for force-leave alone (`operator = "write"`), held apart as in production. */
  forceLeavePolicy?: string;
  /** Settings of its own, added to (and overriding) the shared environment. */
  env?: (ctx: { consul: ConsulCluster; compute: RunningEmulator }) => Record<string, string>;
  /** An HTTP target of the same source, run as a second Functions Framework process. */
  httpTarget?: string;
  /** Reaches Consul through a ConsulLink the scenarios can degrade. */
  consulLink?: boolean;
}

/**
 * The functions the sandbox runs when they exist in dist/, the topic that triggers each and the
 * Consul policy (infra-scripts/acl/) its token holds; without one it runs anonymous.
 */
const functionCatalog: FunctionEntry[] = [
  {
    dir: 'instance-events',
    target: 'instanceEvents',
    topic: 'instance-events',
    policy: 'instance-events',
    forceLeavePolicy: 'force-leave',
  },
  {
    dir: 'scaling-alerts',
    target: 'scalingAlerts',
    topic: 'scaling-alerts',
    policy: 'scaling-alerts',
    env: scalingAlertsEnv,
  },
  {
    dir: 'health-sweep',
    target: 'healthSweep',
    topic: 'health-sweep',
    policy: 'health-sweep',
    // Info: the scenarios read the per-sweep report line.
    // The rules too: the sweep's lease pass reverts what expired leases held.
    env: () => ({
      HEALTH_SWEEP_CONFIG_JSON: healthSweepConfig(),
      LOG_LEVEL: 'info',
      SCALING_RULES_JSON: scalingAlertsEnv().SCALING_RULES_JSON!,
    }),
    httpTarget: 'healthSweepHttp',
    consulLink: true,
  },
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
  /** Base URLs of the HTTP targets running, by target (e.g. healthSweepHttp). */
  httpUrls: Record<string, string>;
  /** The Consul links of the functions that have one, by target. */
  consulLinks: Record<string, ConsulLink>;
  /** The latest JSON log lines of a function's process (a cloudevent or an HTTP target), oldest first. */
  logs(target: string): readonly Record<string, unknown>[];
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
    const httpUrls: Record<string, string> = {};
    const consulLinks: Record<string, ConsulLink> = {};
    const logLines = new Map<string, Record<string, unknown>[]>();
    for (const f of functionCatalog) {
      const source = path.join(repoRoot(), 'dist/functions', f.dir, 'index.js');
      if (!existsSync(source)) continue;
      const token = f.policy ? await functionToken(consul, f.policy, `fn ${f.target}`) : undefined;
      const forceLeaveToken = f.forceLeavePolicy
        ? await functionToken(consul, f.forceLeavePolicy, `fn ${f.target} force-leave`)
        : undefined;
      let consulAddr = options.consulAddr ?? consul.servers[0]!.httpAddr;
      if (f.consulLink) {
        const link = await startConsulLink(consulAddr);
        stops.push(() => link.stop());
        consulLinks[f.target] = link;
        consulAddr = link.url;
      }
      const env = {
        ...envWithoutConsulToken(),
        GOOGLE_CLOUD_PROJECT: sandboxProject,
        CONSUL_HTTP_ADDR: consulAddr,
        ...(token ? { CONSUL_HTTP_TOKEN: token } : {}),
        ...(forceLeaveToken ? { CONSUL_FORCE_LEAVE_TOKEN: forceLeaveToken } : {}),
        COMPUTE_API_ENDPOINT: compute.url,
        METADATA_SERVER_DETECTION: 'none',
        ...f.env?.({ consul, compute }),
      };
      const run = async (target: string, signature: 'cloudevent' | 'http') => {
        const port = await freePort();
        const lines: Record<string, unknown>[] = [];
        logLines.set(target, lines);
        const keep = lineKeeper(lines);
        const proc: ManagedProcess = await startProcess({
          name: `function ${target}`,
          command: process.execPath,
          args: [
            path.join(repoRoot(), 'node_modules/@google-cloud/functions-framework/build/src/main.js'),
            `--target=${target}`,
            `--signature-type=${signature}`,
            `--source=${source}`,
            `--port=${port}`,
          ],
          env,
          ready: () => tcpOpen('127.0.0.1', port),
          onOutput: (chunk) => {
            recordActions(actions, target, chunk);
            keep(chunk);
          },
        });
        stops.push(() => proc.stop());
        return `http://127.0.0.1:${port}/`;
      };
      const url = await run(f.target, 'cloudevent');
      functions.push(f.target);
      routes.push({ topic: f.topic, subscription: `eventarc-${f.topic}`, url });
      if (f.httpTarget) {
        httpUrls[f.httpTarget] = await run(f.httpTarget, 'http');
        functions.push(f.httpTarget);
      }
    }
    const bridge = await startPushBridge({
      projectId: sandboxProject,
      emulatorHost: options.pubsubHost,
      logger,
      routes,
    });
    stops.push(() => bridge.stop());
    return {
      functions,
      bridge,
      httpUrls,
      consulLinks,
      logs: (target) => logLines.get(target) ?? [],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Keeps a function's last 300 JSON log lines (the scenarios read its sweep reports from them); a
 * line split across output chunks is joined first.
 */
function lineKeeper(lines: Record<string, unknown>[]): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = (parts.pop() ?? '').slice(-1_000_000);
    for (const line of parts) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        continue;
      }
    }
    if (lines.length > 300) lines.splice(0, lines.length - 300);
  };
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
