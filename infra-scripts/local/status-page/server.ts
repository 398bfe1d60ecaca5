/**
 * The sandbox's status page: tiers, instances per zone with their Consul health, autoscaler policies,
 * charts of the last 15 minutes (`GET /api/history`), scalingAlerts' leases and scaling schedules,
 * recent lifecycle events and the orchestrator's actions, refreshed every 2 s. `POST /api/scenarios/NAME`
 * runs a scenario inside the sandbox and streams its report (what `npm run scenario` calls).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../shared/logging';
import type { RunningEmulator } from '../compute-emulator';
import { snapshot } from '../compute-emulator/server';
import type { ConsulCluster } from '../launch';
import type { PushBridge } from '../push-bridge';
import { consulView } from './consul-view';
import { startHistory, type HistoryOptions } from './history';
import { leaseView } from './leases';
import { page } from './page';

export type ActionLog = {
  at: string;
  function: string;
  decision: string;
  message: string;
  detail: unknown;
}[];

export type ScenarioRunner = (name: string, out: (line: string) => void) => Promise<void>;

export interface StatusPageOptions {
  port: number;
  host?: string;
  compute: RunningEmulator;
  consul: ConsulCluster;
  actions: ActionLog;
  bridge: Pick<PushBridge, 'stats'>;
  logger: Logger;
  /** Root of the orchestrator's KV state, where scalingAlerts keeps its leases (default: the contract's). */
  kvPrefix?: string;
  history?: HistoryOptions;
  /** Where to look (frontend, HAProxy stats, Consul UI), recomputed as instances come and go. */
  links: () => Record<string, string>;
}

export interface StatusPage {
  url: string;
  setScenarioRunner(run: ScenarioRunner): void;
  stop(): Promise<void>;
}

export async function startStatusPage(options: StatusPageOptions): Promise<StatusPage> {
  let runner: ScenarioRunner | undefined;
  let running: string | undefined;
  const history = startHistory(options.compute, options.history);
  const state = async () => ({
    at: new Date().toISOString(),
    links: options.links(),
    compute: snapshot(options.compute.emulator),
    consul: await consulView(options.consul),
    actions: options.actions.slice(-50),
    deliveries: options.bridge.stats(),
    leases: await leaseView(options.consul, options.compute, options.kvPrefix),
    scenario: running ?? null,
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/state') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await state()));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/history') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(history.history()));
      return;
    }
    const scenario = /^\/api\/scenarios\/([a-z-]+)$/.exec(url.pathname);
    if (req.method === 'POST' && scenario) {
      if (!runner) return void res.writeHead(503).end('scenarios are not available yet\n');
      if (running) return void res.writeHead(409).end(`scenario ${running} is still running\n`);
      running = scenario[1]!;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      try {
        await runner(running, (line) => res.write(`${line}\n`));
      } catch (err) {
        res.write(`FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
      } finally {
        running = undefined;
        res.end();
      }
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.logger.error({ err }, 'status page request failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, resolve);
  }).catch((err: unknown) => {
    history.stop();
    throw err;
  });
  const url = `http://${host}:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    setScenarioRunner: (run) => (runner = run),
    stop: () =>
      new Promise<void>((resolve) => {
        history.stop();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
