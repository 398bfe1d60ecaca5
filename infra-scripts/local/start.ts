// `npm start`: the whole system on this machine, offline (see scenarios/sandbox.ts): 3 Consul servers,
// the Pub/Sub and Compute + Monitoring emulators, backend/haproxy/frontend MIGs of real instances with
// autoscalers, the orchestrator's functions behind the push bridge, and a status page. Prints where to
// look; Ctrl-C stops everything and leaves no process behind.
import { services } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import { CONSUL_DNS_PORT, stopAllProcesses } from './launch';
import { runScenario, scenarioNames } from './scenarios';
import { topics } from './scenarios/functions-host';
import { startSandbox } from './scenarios/sandbox';

const log = createLogger({ name: 'sandbox', level: process.env.LOG_LEVEL ?? 'warn' });
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  // Google's libraries must not go looking for a real metadata server from here.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const statusPort = Number(process.env.SANDBOX_STATUS_PORT ?? 8088);
  const sb = await startSandbox({
    logger: log,
    prefix: process.env.SANDBOX_PREFIX ?? '127.0.10',
    statusPort,
    progress: say,
  });
  sb.status.setScenarioRunner(async (name, write) => void (await runScenario(sb, name, write)));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      say('second interrupt: killing everything now');
      await stopAllProcesses();
      process.exit(1);
    }
    stopping = true;
    say(`\n${signal}: stopping the sandbox`);
    const t0 = Date.now();
    await sb.stop();
    await stopAllProcesses();
    say(`stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const consul = sb.consul.servers[0]!;
  say(
    [
      '',
      `Sandbox is up in ${(sb.startupMs / 1000).toFixed(1)} s:`,
      `  Status page     ${sb.statusUrl}   (tiers, instances, health, autoscalers, events, actions)`,
      `  Frontend        ${sb.frontendUrl() ?? '(none running)'}   (answers through HAProxy)`,
      ...sb.haproxyStatsUrls().map((u) => `  HAProxy stats   ${u}`),
      `  Consul UI/API   ${consul.httpAddr}/ui   (export CONSUL_HTTP_ADDR=${consul.httpAddr})`,
      `  Consul token    export CONSUL_HTTP_TOKEN=${sb.consul.token}   (management token of this throwaway sandbox)`,
      `  Consul DNS      dig @${consul.ip} -p ${CONSUL_DNS_PORT} ${services.backend.name}.service.consul`,
      `  Pub/Sub         export PUBSUB_EMULATOR_HOST=${sb.pubsub.host}   topics: ${topics.join(', ')}`,
      `  Compute API     ${sb.compute.url}/compute/v1/projects/${sb.project}/...   (COMPUTE_API_ENDPOINT=${sb.compute.url})`,
      `  Functions       ${sb.functions.join(', ') || 'none built yet'}`,
      ...(sb.sweepHttpUrl
        ? [
            `  Health sweep    every ${sb.sweepIntervalMs / 1000} s; a dry-run report (any bearer token passes here):`,
            `                  curl -s -H 'Authorization: Bearer sandbox' '${sb.sweepHttpUrl}?dryRun=true'`,
          ]
        : []),
      '',
      `Scenarios, from another terminal: npm run scenario -- <${scenarioNames.join('|')}>`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch(async (error: unknown) => {
  log.fatal({ err: error }, 'sandbox failed to start');
  await stopAllProcesses();
  process.exit(1);
});
