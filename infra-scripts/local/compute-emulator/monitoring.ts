import { z } from 'zod';

/** The Cloud Monitoring `timeSeries` subset: create and list custom metrics, kept in memory. */
export class MonitoringError extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, status: this.status } };
  }
}

const badRequest = (message: string) => new MonitoringError(400, 'INVALID_ARGUMENT', message);

const labels = z.record(z.string(), z.string());
const value = z
  .object({
    doubleValue: z.number().optional(),
    int64Value: z.union([z.string().regex(/^-?\d+$/), z.number().int()]).optional(),
    boolValue: z.boolean().optional(),
  })
  .strict()
  .refine((v) => Object.values(v).filter((x) => x !== undefined).length === 1, 'exactly one value field');
const point = z.object({
  interval: z.object({
    endTime: z.string().datetime({ offset: true }),
    startTime: z.string().datetime({ offset: true }).optional(),
  }),
  value,
});
/** Callers write custom metrics only; Google's own (`compute.googleapis.com/…`) GCE writes itself. */
const customType = /^custom\.googleapis\.com\/[\w./-]+$/;
const systemType = /^[a-z]+\.googleapis\.com\/[\w./-]+$/;
const timeSeriesSchema = (type: RegExp, message: string) =>
  z.object({
    metric: z.object({
      type: z.string().regex(type, message),
      labels: labels.optional(),
    }),
    resource: z.object({ type: z.string().min(1), labels: labels.default({}) }),
    metricKind: z.enum(['GAUGE', 'CUMULATIVE', 'DELTA']).optional(),
    valueType: z.enum(['DOUBLE', 'INT64', 'BOOL']).optional(),
    unit: z.string().optional(),
    points: z.array(point).length(1, 'each time series must contain exactly one point'),
  });
const createBodySchema = z.object({
  timeSeries: z.array(timeSeriesSchema(customType, 'custom metric types only')).min(1).max(200),
});
const systemBodySchema = z.object({
  timeSeries: z.array(timeSeriesSchema(systemType, 'a Google metric type')).min(1).max(200),
});

type Labels = Record<string, string>;
type Point = z.infer<typeof point>;
interface Series {
  metric: { type: string; labels: Labels };
  resource: { type: string; labels: Labels };
  metricKind: string;
  valueType: string;
  /** Newest first. */
  points: Point[];
}

const maxPointsPerSeries = 720;

const numeric = (p: Point): number | undefined =>
  p.value.doubleValue ?? (p.value.int64Value === undefined ? undefined : Number(p.value.int64Value));

const seriesKey = (s: {
  metric: { type: string; labels?: Labels };
  resource: { type: string; labels: Labels };
}) =>
  JSON.stringify([s.metric.type, sorted(s.metric.labels ?? {}), s.resource.type, sorted(s.resource.labels)]);

const sorted = (l: Labels) => Object.fromEntries(Object.entries(l).sort(([a], [b]) => a.localeCompare(b)));

/** A conjunction of `field = "value"` terms, the filter subset the project uses. */
export function parseFilter(filter: string): { path: string[]; value: string }[] {
  const terms = filter.split(/\s+AND\s+/);
  return terms.map((t) => {
    const m = /^\s*([a-z_]+(?:\.[A-Za-z_][\w-]*)+)\s*=\s*"([^"]*)"\s*$/.exec(t);
    if (!m) throw badRequest(`Unsupported filter term: ${t.trim()}`);
    return { path: m[1]!.split('.'), value: m[2]! };
  });
}

function matches(s: Series, terms: { path: string[]; value: string }[]): boolean {
  return terms.every(({ path, value }) => {
    const [head, second, third] = path;
    if (head === 'metric' && second === 'type' && !third) return s.metric.type === value;
    if (head === 'resource' && second === 'type' && !third) return s.resource.type === value;
    if (head === 'metric' && second === 'labels' && third) return s.metric.labels[third] === value;
    if (head === 'resource' && second === 'labels' && third) return s.resource.labels[third] === value;
    throw badRequest(`Unsupported filter field: ${path.join('.')}`);
  });
}

export class TimeSeriesStore {
  private readonly series = new Map<string, Series>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** `projects.timeSeries.create`: custom metrics only, as Monitoring allows a caller. */
  create(body: unknown): void {
    this.write(createBodySchema.safeParse(body));
  }

  /** What Google itself records for a resource (e.g. a VM's CPU utilization): never over REST. */
  recordSystem(body: unknown): void {
    this.write(systemBodySchema.safeParse(body));
  }

  private write(parsed: z.ZodSafeParseResult<z.infer<typeof createBodySchema>>): void {
    if (!parsed.success)
      throw badRequest(
        `Invalid timeSeries: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    // Validate the whole batch first: Monitoring writes all or none.
    const seen = new Set<string>();
    for (const ts of parsed.data.timeSeries) {
      const key = seriesKey(ts);
      if (seen.has(key))
        throw badRequest('One or more TimeSeries could not be written: duplicate time series in request.');
      seen.add(key);
      const last = this.series.get(key)?.points[0];
      if (last && Date.parse(ts.points[0]!.interval.endTime) <= Date.parse(last.interval.endTime))
        throw badRequest('One or more TimeSeries could not be written: Points must be written in order.');
    }
    for (const ts of parsed.data.timeSeries) {
      const key = seriesKey(ts);
      const s = this.series.get(key) ?? {
        metric: { type: ts.metric.type, labels: ts.metric.labels ?? {} },
        resource: ts.resource,
        metricKind: ts.metricKind ?? 'GAUGE',
        valueType:
          ts.valueType ??
          (ts.points[0]!.value.doubleValue !== undefined
            ? 'DOUBLE'
            : ts.points[0]!.value.int64Value !== undefined
              ? 'INT64'
              : 'BOOL'),
        points: [],
      };
      s.points.unshift(ts.points[0]!);
      if (s.points.length > maxPointsPerSeries) s.points.length = maxPointsPerSeries;
      this.series.set(key, s);
    }
  }

  list(q: { filter: string; startTime?: string; endTime: string; pageSize?: number; pageToken?: string }) {
    const terms = parseFilter(q.filter);
    if (!terms.some((t) => t.path.join('.') === 'metric.type'))
      throw badRequest('The filter must name a metric.type.');
    const end = Date.parse(q.endTime);
    const start = q.startTime ? Date.parse(q.startTime) : end;
    if (Number.isNaN(end) || Number.isNaN(start) || start > end) throw badRequest('Invalid interval.');
    const out = [...this.series.entries()]
      .filter(([, s]) => matches(s, terms))
      .map(([key, s]) => ({
        key,
        ts: {
          metric: s.metric,
          resource: s.resource,
          metricKind: s.metricKind,
          valueType: s.valueType,
          points: s.points.filter((p) => {
            const t = Date.parse(p.interval.endTime);
            return t >= start && t <= end;
          }),
        },
      }))
      .filter((x) => x.ts.points.length > 0)
      .sort((a, b) => a.key.localeCompare(b.key));
    const offset = q.pageToken ? Number(Buffer.from(q.pageToken, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(offset) || offset < 0) throw badRequest('Invalid page token.');
    const size = q.pageSize && q.pageSize > 0 ? Math.min(q.pageSize, 100_000) : 100_000;
    const pageItems = out.slice(offset, offset + size);
    return {
      timeSeries: pageItems.map((x) => x.ts),
      ...(offset + size < out.length
        ? { nextPageToken: Buffer.from(String(offset + size)).toString('base64url') }
        : {}),
    };
  }

  /** Latest value of a metric reported for one GCE instance, if fresh (for the autoscaler). */
  latest(metricType: string, instanceId: string, maxAgeMs = 180_000): number | undefined {
    let best: Point | undefined;
    for (const s of this.series.values()) {
      if (s.metric.type !== metricType || s.resource.labels.instance_id !== instanceId) continue;
      const p = s.points[0];
      if (p && (!best || Date.parse(p.interval.endTime) > Date.parse(best.interval.endTime))) best = p;
    }
    if (!best || this.clock() - Date.parse(best.interval.endTime) > maxAgeMs) return undefined;
    return numeric(best);
  }
}
