import * as functions from '@google-cloud/functions-framework';
import type { CloudEvent, Request, Response } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { classifyError } from '../../shared/errors';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import { loadHealthSweepConfig } from '../../shared/health-sweep/config';
import { healthSweepFromConfig } from '../../shared/health-sweep/wire';
import { messagePublishedType } from '../../shared/instance-events/schema';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'healthSweep' });
let sweep: ((options: { dryRun: boolean }) => Promise<SweepResult>) | undefined;
let envDryRun = false;

// Built on the first call, not at load: keeps the cold start to loading code.
function runner() {
  if (!sweep) {
    const config = loadConfig();
    const sweepConfig = loadHealthSweepConfig();
    envDryRun = config.dryRun;
    sweep = healthSweepFromConfig(config, sweepConfig, { logger }).run;
    logger.info(
      { consul: config.consul.baseUrl, groups: sweepConfig.groups.length, dryRun: config.dryRun },
      'healthSweep ready',
    );
  }
  return sweep;
}

/**
 * Pub/Sub `health-sweep` (published by Cloud Scheduler) → one sweep. Never asks for a redelivery:
 * the next tick is a fresh sweep over a fresh observation, so a failure is logged and acknowledged.
 */
export async function healthSweep(event: CloudEvent<unknown>): Promise<void> {
  // Only a Pub/Sub message is a tick: another event type sent here is acknowledged, not swept on.
  if (event.type !== messagePublishedType) {
    logger.warn(
      {
        decision: 'ignored',
        reason: `event type ${String(event.type).slice(0, 200)}`,
        eventId: String(event.id).slice(0, 200),
      },
      'not a Pub/Sub message: acknowledged',
    );
    return;
  }
  try {
    const run = runner();
    await run({ dryRun: envDryRun });
  } catch (err) {
    const failure = classifyError(err);
    logger.error({ decision: 'failed', reason: failure.message, eventId: event.id }, 'health sweep failed');
  }
}

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
    const run = runner();
    const result = await run({ dryRun: requested || envDryRun });
    res.status(result.status === 'locked' ? 409 : 200).json(result);
  } catch (err) {
    const failure = classifyError(err);
    logger.error({ decision: 'failed', reason: failure.message }, 'health sweep (http) failed');
    res.status(failure.transient ? 503 : 500).json({ error: failure.message });
  }
}

functions.cloudEvent('healthSweep', healthSweep);
functions.http('healthSweepHttp', healthSweepHttp);
