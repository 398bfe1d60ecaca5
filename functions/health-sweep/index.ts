import * as functions from '@google-cloud/functions-framework';
import { createLogger } from '../../shared/logging';
import { lazyHeartbeat } from '../heartbeat';
import { pubsubFunction } from '../pubsub-function';
import { prepared } from '../start';
import { composeHealthSweep, loadHealthSweepSettings } from './compose';
import { sweepHttpHandler } from './http';

const logger = createLogger({ name: 'healthSweep' });

// One sweep (and one Consul client) for every entry point, built at load when one is served.
const sweep = prepared(['healthSweep', 'healthSweepHttp', 'healthSweepActHttp'], logger, () => {
  const settings = loadHealthSweepSettings();
  const { config } = settings;
  const built = composeHealthSweep(settings, { logger });
  logger.info(
    {
      consul: config.consul.baseUrl,
      groups: settings.sweep.groups.length,
      leases: settings.alerts !== undefined,
      dryRun: config.dryRun,
    },
    'healthSweep ready',
  );
  return { run: built.run, dryRun: config.dryRun };
});

/**
 * Pub/Sub `health-sweep` (published by Cloud Scheduler) → one sweep. Never asks for a redelivery:
 * the next tick is a fresh sweep over a fresh observation, so a failure is logged and acknowledged.
 */
export const healthSweep = pubsubFunction(
  'healthSweep',
  logger,
  () => {
    const { run, dryRun } = sweep();
    return () => run({ dryRun });
  },
  { ackOnFailure: true },
);

/** For operators and their dashboards: `GET` or `POST` → the sweep's report; it never acts. */
export const healthSweepHttp = sweepHttpHandler('healthSweepHttp', false, {
  logger,
  sweep,
  beat: lazyHeartbeat('healthSweepHttp', logger),
});

/**
 * For operators allowed to repair (their own invoker binding, functions/catalog.ts): `POST` with
 * `{"act": true}` → one acting sweep; without it, a report like healthSweepHttp's.
 */
export const healthSweepActHttp = sweepHttpHandler('healthSweepActHttp', true, {
  logger,
  sweep,
  beat: lazyHeartbeat('healthSweepActHttp', logger),
});

functions.cloudEvent('healthSweep', healthSweep);
functions.http('healthSweepHttp', healthSweepHttp);
functions.http('healthSweepActHttp', healthSweepActHttp);
