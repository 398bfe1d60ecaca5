/**
 * instanceEvents: event → node gone from the catalog latency (p50/p99) and events per second for
 * one function instance against a local Consul (ACLs on, the function's least-privilege token)
 * holding 1,000 nodes; and the function's cold start. Prints figures, asserts nothing.
 * Run after `npm run build`: node dist/bench/instance-events.bench.js [--smoke]
 * `--smoke`: 50 nodes, 20 events one after another, one phase of 4 in flight, one cold start (the
 * check in test/bench/). The last line is the figures as JSON (bench/lib/figures.ts).
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../shared/config';
import { createConsulClient, type ConsulClient, type TxnOp } from '../shared/consul';
import { nodeMetaKeys, services } from '../shared/contract';
import { instanceEventsFromConfig } from '../shared/instance-events/wire';
import { createLogger } from '../shared/logging';
import {
  repoRoot,
  startConsulCluster,
  stopAllProcesses,
  type ConsulAgent,
} from '../infra-scripts/local/launch';
import { printFigures } from './lib/figures';

const smoke = parseArgs({ options: { smoke: { type: 'boolean' } } }).values.smoke === true;
const NODES = smoke ? 50 : 1000;
const SEQUENTIAL = smoke ? 20 : 300;
/** Cloud Functions (2nd gen) serve up to 80 requests at once per instance by default. */
const CONCURRENCY = smoke ? [4] : [16, 64];
const COLD_STARTS = smoke ? 1 : 5;

const say = (line: string) => process.stdout.write(`${line}\n`);
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (v: number) => `${v.toFixed(1)} ms`;
const nodeName = (i: number) => `backend-${String(i).padStart(4, '0')}`;
// Each phase registers the nodes again as new instances (a new generation), so every phase runs
// against a full catalog and no event is a duplicate of an earlier phase's.
const instanceId = (i: number, gen: number) => String(4_500_000_000_000_000_000n + BigInt(gen * 10_000 + i));

/** NODES nodes with identity metadata and a backend service, 32 per transaction. */
async function registerNodes(server: ConsulAgent, gen: number): Promise<void> {
  for (let start = 0; start < NODES; start += 32) {
    const ops: TxnOp[] = [];
    for (let i = start; i < Math.min(NODES, start + 32); i++) {
      const name = nodeName(i);
      ops.push({
        Node: {
          Verb: 'set',
          Node: {
            Node: name,
            Address: `10.${(i >> 8) & 255}.${i & 255}.7`,
            Meta: {
              [nodeMetaKeys.instanceId]: instanceId(i, gen),
              [nodeMetaKeys.zone]: 'us-central1-f',
              [nodeMetaKeys.role]: 'backend',
            },
          },
        },
      });
      ops.push({
        Service: {
          Verb: 'set',
          Node: name,
          Service: { ID: services.backend.name, Service: services.backend.name, Port: services.backend.port },
        },
      });
    }
    const answer = await server.consul.txn(ops);
    if (!answer.ok) throw new Error(`registering nodes: ${answer.errors.map((e) => e.What).join('; ')}`);
  }
}

/** A delete-done audit entry for node i, as Pub/Sub delivers it. */
function message(i: number, gen: number): unknown {
  const entry = {
    insertId: `bench-${gen}-${i}`,
    logName: 'projects/ilb-demo/logs/cloudaudit.googleapis.com%2Factivity',
    timestamp: new Date(Date.UTC(2026, 10, 26, 10) + i).toISOString(),
    operation: { id: `operation-bench-${gen}-${i}`, last: true, producer: 'compute.googleapis.com' },
    resource: {
      type: 'gce_instance',
      labels: { instance_id: instanceId(i, gen), project_id: 'ilb-demo', zone: 'us-central1-f' },
    },
    protoPayload: {
      methodName: 'v1.compute.instances.delete',
      resourceName: `projects/ilb-demo/zones/us-central1-f/instances/${nodeName(i)}`,
    },
  };
  return { message: { data: Buffer.from(JSON.stringify(entry)).toString('base64'), messageId: String(i) } };
}

function coldStarts(): number[] {
  const entry = path.join(repoRoot(), 'dist/functions/index.js');
  const script = `
    const t0 = performance.now();
    require(${JSON.stringify(entry)});
    const ready = require('@google-cloud/functions-framework/testing').getFunction('instanceEvents');
    if (!ready) throw new Error('instanceEvents not registered');
    process.stdout.write(String(performance.now() - t0));`;
  const times: number[] = [];
  for (let run = 0; run < COLD_STARTS; run++) {
    const started = performance.now();
    const res = spawnSync(process.execPath, ['-e', script], { cwd: repoRoot(), encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`cold start run failed: ${res.stderr}`);
    times.push(performance.now() - started);
    say(
      `  cold start ${run + 1}: require ${ms(Number(res.stdout))}, process start to ready ${ms(times[run] ?? 0)}`,
    );
  }
  return times.sort((a, b) => a - b);
}

/**
 * Compute as the function sees it after a deletion: every instance is gone (404, Google's error
 * body). Each removal is confirmed by one `instances.get`; local, so the figures leave out the
 * round trip to Google (tens of ms).
 */
async function startComputeGone(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const message = `The resource '${req.url ?? ''}' was not found`;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 404, message, errors: [{ message, reason: 'notFound' }] } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function main(): Promise<void> {
  const figures: { nodes: number; sequential?: object; throughput: object[] } = {
    nodes: NODES,
    throughput: [],
  };
  say(`setting up: 1 Consul server (ACLs), ${NODES} nodes`);
  const cluster = await startConsulCluster({ servers: 1 });
  const compute = await startComputeGone();
  try {
    const server = cluster.servers[0] as ConsulAgent;
    const rules = readFileSync(path.join(repoRoot(), 'infra-scripts/acl/instance-events.hcl'), 'utf8');
    await server.consul.acl.createPolicy('instance-events', rules);
    const token = await server.consul.acl.createToken({ policies: ['instance-events'] });
    const forceLeaveRules = readFileSync(path.join(repoRoot(), 'infra-scripts/acl/force-leave.hcl'), 'utf8');
    await server.consul.acl.createPolicy('force-leave', forceLeaveRules);
    const forceLeaveToken = await server.consul.acl.createToken({ policies: ['force-leave'] });
    await registerNodes(server, 0);

    const config = loadConfig({
      CONSUL_HTTP_ADDR: server.httpAddr,
      CONSUL_HTTP_TOKEN: token,
      CONSUL_FORCE_LEAVE_TOKEN: forceLeaveToken,
      COMPUTE_API_ENDPOINT: compute.endpoint,
    });
    const real = createConsulClient(config.consul);
    const goneAt = new Map<string, number>();
    // Time at which each node left the catalog: the moment its CAS delete was acknowledged.
    const consul: ConsulClient = {
      ...real,
      catalog: {
        ...real.catalog,
        async deleteNodeCas(name, index) {
          const result = await real.catalog.deleteNodeCas(name, index);
          if (result === 'deleted') goneAt.set(name, performance.now());
          return result;
        },
      },
    };
    const handle = instanceEventsFromConfig(config, {
      consul,
      // The messages carry fixed timestamps: the function's clock is set just after them.
      now: () => Date.UTC(2026, 10, 26, 12),
      // The log lines are built and serialized as in production, then dropped.
      logger: createLogger({
        name: 'instanceEvents',
        destination: new Writable({ write: (_c, _e, done) => done() }),
      }),
    });

    const gone: number[] = [];
    const handled: number[] = [];
    const run = async (i: number, gen: number) => {
      const t0 = performance.now();
      const outcome = await handle(message(i, gen));
      handled.push(performance.now() - t0);
      if (outcome.status !== 'applied') throw new Error(`event ${i}: ${JSON.stringify(outcome)}`);
      const at = goneAt.get(nodeName(i));
      if (at === undefined || at < t0) throw new Error(`node ${nodeName(i)} was not deregistered`);
      gone.push(at - t0);
    };
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const nodeCount = async () => (await server.consul.catalog.nodes()).length;

    const nodesBefore = await nodeCount();
    say(`\nlatency: ${SEQUENTIAL} delete events one after another, ${nodesBefore} nodes in the catalog`);
    for (let i = 0; i < SEQUENTIAL; i++) await run(i, 0);
    const goneSorted = sorted(gone);
    const handledSorted = sorted(handled);
    say(`  event -> node gone from catalog: p50 ${ms(pct(goneSorted, 50))}, p99 ${ms(pct(goneSorted, 99))}`);
    say(
      `  event -> handled (ledger, CAS delete, force-leave): p50 ${ms(pct(handledSorted, 50))}, p99 ${ms(pct(handledSorted, 99))}`,
    );
    figures.sequential = {
      events: SEQUENTIAL,
      nodesBefore,
      goneSamples: gone.length,
      goneP50Ms: pct(goneSorted, 50),
      goneP99Ms: pct(goneSorted, 99),
      handledSamples: handled.length,
      handledP50Ms: pct(handledSorted, 50),
      handledP99Ms: pct(handledSorted, 99),
    };

    for (const [phase, inFlight] of CONCURRENCY.entries()) {
      const gen = phase + 1;
      await registerNodes(server, gen);
      const phaseNodesBefore = await nodeCount();
      say(
        `\nthroughput: ${NODES} delete events, ${inFlight} in flight, ${phaseNodesBefore} nodes in the catalog`,
      );
      gone.length = 0;
      const started = performance.now();
      const cpu = process.cpuUsage();
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < NODES) await run(next++, gen);
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const underLoad = sorted(gone);
      say(`  ${(NODES / seconds).toFixed(0)} events/s (${NODES} events in ${seconds.toFixed(2)} s)`);
      say(`  function CPU: ${((used.user + used.system) / 1000 / NODES).toFixed(2)} ms per event`);
      say(`  event -> node gone under load: p50 ${ms(pct(underLoad, 50))}, p99 ${ms(pct(underLoad, 99))}`);
      const nodesLeft = await nodeCount();
      say(`  nodes left in the catalog: ${nodesLeft} (the Consul server itself)`);
      figures.throughput.push({
        inFlight,
        events: NODES,
        nodesBefore: phaseNodesBefore,
        goneSamples: underLoad.length,
        seconds,
        eventsPerSec: NODES / seconds,
        cpuMsPerEvent: (used.user + used.system) / 1000 / NODES,
        goneP50Ms: pct(underLoad, 50),
        goneP99Ms: pct(underLoad, 99),
        nodesLeft,
      });
    }
  } finally {
    await compute.stop();
    await cluster.stop();
  }

  say(
    `\ncold start: require the built entry until instanceEvents is registered (${COLD_STARTS} fresh processes)`,
  );
  const cold = coldStarts();
  say(`  median process start to ready ${ms(pct(cold, 50))}, worst ${ms(cold[cold.length - 1] ?? NaN)}`);
  printFigures({ ...figures, coldStartsMs: cold });
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => void stopAllProcesses());
