import { jsonText, parse } from './answers';
import { isResponseError, type Connection } from './package';
import { autopilotHealthSchema } from './schemas';
import type { ConsulClient } from './types';

/** Not in the package, which has no operator endpoints. */
export function operatorApi({ run, raw }: Connection): ConsulClient['operator'] {
  return {
    autopilotHealth: () =>
      run('operator autopilot health', async (pass) => {
        let body: unknown;
        try {
          body = (
            await raw('_get', { name: 'operator.autopilot.health', path: '/operator/autopilot/health' }, pass)
          ).body;
        } catch (err) {
          // 429 is Consul's way to say "unhealthy"; the body is the same report, sent without a
          // JSON content type, so it arrives as text.
          if (!isResponseError(err) || err.statusCode !== 429) throw err;
          body = jsonText(err.response.body);
        }
        const health = parse(autopilotHealthSchema, body, 'operator/autopilot/health');
        return {
          healthy: health.Healthy,
          failureTolerance: health.FailureTolerance,
          servers: (health.Servers ?? []).map((s) => ({
            id: s.ID,
            name: s.Name,
            address: s.Address,
            leader: s.Leader,
            voter: s.Voter,
            healthy: s.Healthy,
          })),
        };
      }),
  };
}
