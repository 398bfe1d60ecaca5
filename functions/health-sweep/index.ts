import * as functions from '@google-cloud/functions-framework';
import type { Request, Response } from '@google-cloud/functions-framework';
import { classifyError } from '../../shared/errors';
import { createLogger } from '../../shared/logging';
import { pubsubFunction } from '../pubsub-function';
import { prepared } from '../start';
import { composeHealthSweep, loadHealthSweepSettings } from './compose';

const logger = createLogger({ name: 'healthSweep' });

// One sweep (and one Consul client) for both entry points, built at load when either is served.
const sweep = prepared(['healthSweep', 'healthSweepHttp'], logger, () => {
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

/**
 * Whether a request asks for a dry run: any `dryRun` that is not plainly false does, so a repeated,
 * empty or malformed one (`?dryRun`, `?dryRun[]=true`, `?dryRun=true&dryRun=false`) errs on the
 * side of acting on nothing.
 */
const asksDryRun = (v: unknown) => v !== undefined && v !== false && v !== 'false' && v !== '0';

/**
 * For operators: `POST` or `GET` with `dryRun` (query or JSON body) → the sweep's report as JSON.
 * Deployed with IAM invoker only (never `--allow-unauthenticated`): Google checks the bearer
 * token before the request gets here; refusing a request without one is defence in depth.
 */
export async function healthSweepHttp(req: Request, res: Response): Promise<void> {
  const auth = req.get('authorization') ?? '';
  // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` as operators often type it.
  if (!/^bearer \S+$/i.test(auth)) {
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer')
      .json({ error: 'an Authorization: Bearer token is required' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'POST') {
    res.status(405).set('Allow', 'GET, POST').json({ error: 'GET or POST' });
    return;
  }
  const body: unknown = req.body;
  const fromBody =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>).dryRun
      : undefined;
  const requested = asksDryRun(req.query.dryRun) || asksDryRun(fromBody);
  try {
    const { run, dryRun } = sweep();
    const result = await run({ dryRun: requested || dryRun });
    res.status(result.status === 'locked' ? 409 : 200).json(result);
  } catch (err) {
    const failure = classifyError(err);
    logger.error({ decision: 'failed', reason: failure.message }, 'health sweep (http) failed');
    res.status(failure.transient ? 503 : 500).json({ error: failure.message });
  }
}

functions.cloudEvent('healthSweep', healthSweep);
functions.http('healthSweepHttp', healthSweepHttp);
