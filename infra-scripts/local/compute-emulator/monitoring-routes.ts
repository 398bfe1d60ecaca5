import { z } from 'zod';
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

/** The Cloud Monitoring `timeSeries` subset: write custom metrics, read them back with a filter. */
export function monitoringRoutes(monitoring: TimeSeriesStore): Route[] {
  const timeSeries = '/v3/projects/:project/timeSeries';
  return [
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
