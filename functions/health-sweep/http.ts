import type { Request, Response } from '@google-cloud/functions-framework';
import { z } from 'zod';
import { classifyError } from '../../shared/errors';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import type { Logger } from '../../shared/logging';
import type { Decision } from '../../shared/outcome';
import type { Heartbeat } from '../heartbeat';

/**
 * Whether a request asks for a dry run: any `dryRun` that is not plainly false does, so a repeated,
 * empty or malformed one (`?dryRun`, `?dryRun[]=true`, `?dryRun=true&dryRun=false`) errs on the
 * side of acting on nothing.
 */
const asksDryRun = (v: unknown) => v !== undefined && v !== false && v !== 'false' && v !== '0';

/**
 * The JSON body an operator may send. Only `"act": true` (a JSON boolean, in a POST, to the acting
 * entry point) makes a sweep act; anything else reports.
 */
const bodySchema = z.object({ act: z.boolean().optional(), dryRun: z.unknown().optional() }).passthrough();

/** What a request asks for, or why it is refused (status and message). */
function readRequest(
  req: Request,
  mayAct: boolean,
): { act: boolean } | { status: number; error: string; headers?: Record<string, string> } {
  // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` as operators often type it.
  if (!/^bearer \S+$/i.test(req.get('authorization') ?? ''))
    return {
      status: 401,
      error: 'an Authorization: Bearer token is required',
      headers: { 'WWW-Authenticate': 'Bearer' },
    };
  if (req.method !== 'GET' && req.method !== 'POST')
    return { status: 405, error: 'GET or POST', headers: { Allow: 'GET, POST' } };
  const raw: unknown = req.body;
  // No body, or one the framework did not parse as JSON (a string, a Buffer): no `act` in it.
  const parsed = bodySchema.safeParse(
    typeof raw === 'object' && raw !== null && !Buffer.isBuffer(raw) ? raw : {},
  );
  if (!parsed.success) return { status: 400, error: 'the body is a JSON object; "act" is true or false' };
  const asked = req.method === 'POST' && parsed.data.act === true;
  if (asked && !mayAct)
    return {
      status: 403,
      error: 'this entry point only reports: acting is healthSweepActHttp (its own invokers)',
    };
  return { act: asked && !asksDryRun(req.query.dryRun) && !asksDryRun(parsed.data.dryRun) };
}

/**
 * An operators' HTTP entry point: the sweep's report as JSON. It acts only when `mayAct` (the
 * separately invoked entry point) and the request is a POST whose JSON body holds `"act": true`;
 * `dryRun` anywhere, or the function's own DRY_RUN, still wins. Deployed with IAM invokers only
 * (never `--allow-unauthenticated`): Google checks the bearer token before the request gets here;
 * refusing a request without one is defence in depth.
 */
export function sweepHttpHandler(
  name: string,
  mayAct: boolean,
  deps: {
    logger: Logger;
    sweep: () => { run: (o: { dryRun: boolean }) => Promise<SweepResult>; dryRun: boolean };
    beat: Heartbeat;
  },
) {
  const { logger } = deps;
  return async (req: Request, res: Response): Promise<void> => {
    const asked = readRequest(req, mayAct);
    if ('status' in asked) {
      res
        .status(asked.status)
        .set(asked.headers ?? {})
        .json({ error: asked.error });
      return;
    }
    try {
      const { run, dryRun } = deps.sweep();
      const result = await run({ dryRun: !asked.act || dryRun });
      await deps.beat();
      res.status(result.status === 'locked' ? 409 : 200).json(result);
    } catch (err) {
      const failure = classifyError(err);
      logger.error(
        { decision: 'failed' satisfies Decision, reason: failure.message, target: name },
        'health sweep (http) failed',
      );
      res.status(failure.transient ? 503 : 500).json({ error: failure.message });
    }
  };
}
