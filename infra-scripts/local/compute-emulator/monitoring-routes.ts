import { z } from 'zod';
import type { Alerting } from './alerting';
import { MonitoringError, type TimeSeriesStore } from './monitoring';
import { type Route, route } from './router';

const timeSeriesQuery = z.object({
  filter: z.string().min(1),
  'interval.endTime': z.string().min(1),
  'interval.startTime': z.string().optional(),
  pageSize: z.coerce.number().int().min(0).optional(),
  pageToken: z.string().optional(),
  view: z.enum(['FULL', 'HEADERS']).optional(),
});

const dropBody = z.object({
  state: z.enum(['open', 'closed', 'any']),
  count: z.number().int().min(1).max(100).default(1),
});

/**
 * The Cloud Monitoring subset: write custom metrics and read them back with a filter; with alerting,
 * `alertPolicies` and `notificationChannels` (create, list, get, delete) and the emulator's fault
 * switch that makes the channels lose notifications.
 */
export function monitoringRoutes(monitoring: TimeSeriesStore, alerting?: Alerting): Route[] {
  const timeSeries = '/v3/projects/:project/timeSeries';
  const policies = '/v3/projects/:project/alertPolicies';
  const channels = '/v3/projects/:project/notificationChannels';
  const p = (r: { params: Record<string, string> }) => r.params.project!;
  const alertingRoutes: Route[] = alerting
    ? [
        route('POST', policies, (r) => alerting.createPolicy(p(r), r.body)),
        route('GET', policies, (r) => alerting.listPolicies(p(r))),
        route('GET', `${policies}/:id`, (r) => alerting.getPolicy(p(r), r.params.id!)),
        route('DELETE', `${policies}/:id`, (r) => alerting.deletePolicy(p(r), r.params.id!)),
        route('PATCH', `${policies}/:id`, (r) =>
          alerting.updatePolicy(p(r), r.params.id!, r.body, r.query.updateMask),
        ),
        route('POST', channels, (r) => alerting.createChannel(p(r), r.body)),
        route('GET', channels, (r) => alerting.listChannels(p(r))),
        route('GET', `${channels}/:id`, (r) => alerting.getChannel(p(r), r.params.id!)),
        route('DELETE', `${channels}/:id`, (r) =>
          alerting.deleteChannel(p(r), r.params.id!, r.query.force === 'true'),
        ),
        route('POST', '/emulator/v1/alerting/drop', (r) => {
          const b = dropBody.safeParse(r.body);
          if (!b.success)
            throw new MonitoringError(400, 'INVALID_ARGUMENT', 'body: {state: open|closed|any, count}');
          alerting.dropNotifications(b.data.state, b.data.count);
          return { dropping: b.data };
        }),
        route('GET', '/emulator/v1/alerting/incidents', () => ({
          incidents: alerting.incidents(),
          deliveries: alerting.deliveries(),
        })),
      ]
    : [];
  return [
    ...alertingRoutes,
    route('POST', timeSeries, (r) => {
      monitoring.create(r.body);
      return {};
    }),
    route('GET', timeSeries, (r) => {
      const q = timeSeriesQuery.safeParse(r.query);
      if (!q.success)
        throw new MonitoringError(
          400,
          'INVALID_ARGUMENT',
          `Invalid request: ${q.error.issues[0]!.path.join('.')}: ${q.error.issues[0]!.message}`,
        );
      return monitoring.list({
        filter: q.data.filter,
        endTime: q.data['interval.endTime'],
        startTime: q.data['interval.startTime'],
        pageSize: q.data.pageSize,
        pageToken: q.data.pageToken,
      });
    }),
  ];
}
