/**
 * Cloud Monitoring: v3 alert policies and notification channels, v1 dashboards (one endpoint
 * override, `monitoring`, serves both). Policies may only notify channels that exist; a channel
 * still used by a policy is deleted only with `force`
 * (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.notificationChannels/delete).
 * Dashboard names carry the project number, as the dashboards API returns them.
 */
import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import { aligners, reducers } from '../../../infra-scripts/deploy/dashboard-schema';
import { comparisons } from '../../../infra-scripts/local/compute-emulator/alerting-schemas';
import { dashboardSchema } from './dashboard-schema';
import { duration, fail, guard, invalid, labels, notFound, now, parse, router, type Params } from './kit';

/** Aggregation as Google takes it in an alert policy: looser than the deploy's dashboards need. */
const aggregation = z
  .strictObject({
    alignmentPeriod: duration.optional(),
    perSeriesAligner: z.enum(aligners).optional(),
    crossSeriesReducer: z.enum(reducers).optional(),
    groupByFields: z.array(z.string()).optional(),
  })
  .refine(
    (a) =>
      !a.crossSeriesReducer ||
      a.crossSeriesReducer === 'REDUCE_NONE' ||
      (a.alignmentPeriod !== undefined &&
        a.perSeriesAligner !== undefined &&
        a.perSeriesAligner !== 'ALIGN_NONE'),
    'crossSeriesReducer needs alignmentPeriod and a perSeriesAligner other than ALIGN_NONE',
  );
const filter = z
  .string()
  .refine((f) => /metric\.type\s*=\s*"[^"]+"/.test(f), 'filter must select a metric.type');
const trigger = z
  .strictObject({ count: z.number().int().optional(), percent: z.number().optional() })
  .optional();
const conditionThreshold = z.strictObject({
  filter,
  aggregations: z.array(aggregation).optional(),
  denominatorFilter: z.string().optional(),
  denominatorAggregations: z.array(aggregation).optional(),
  comparison: z.enum(comparisons).exclude(['COMPARISON_UNSPECIFIED']),
  thresholdValue: z.number().optional(),
  duration,
  trigger,
  evaluationMissingData: z
    .enum([
      'EVALUATION_MISSING_DATA_UNSPECIFIED',
      'EVALUATION_MISSING_DATA_INACTIVE',
      'EVALUATION_MISSING_DATA_ACTIVE',
      'EVALUATION_MISSING_DATA_NO_OP',
    ])
    .optional(),
});
const conditionAbsent = z.strictObject({
  filter,
  aggregations: z.array(aggregation).optional(),
  duration,
  trigger,
});
const condition = z
  .strictObject({
    name: z.string().optional(),
    displayName: z.string().min(1),
    conditionThreshold: conditionThreshold.optional(),
    conditionAbsent: conditionAbsent.optional(),
    conditionMonitoringQueryLanguage: z.strictObject({ query: z.string(), duration, trigger }).optional(),
  })
  .refine(
    (c) =>
      [c.conditionThreshold, c.conditionAbsent, c.conditionMonitoringQueryLanguage].filter(Boolean).length ===
      1,
    'a condition holds exactly one of conditionThreshold, conditionAbsent, conditionMonitoringQueryLanguage',
  );
const policyBody = z.strictObject({
  name: z.string().optional(),
  displayName: z.string().min(1),
  documentation: z
    .strictObject({
      content: z.string().optional(),
      mimeType: z.string().optional(),
      subject: z.string().optional(),
    })
    .optional(),
  userLabels: labels.optional(),
  conditions: z.array(condition).min(1).max(6),
  combiner: z.enum(['COMBINE_UNSPECIFIED', 'AND', 'OR', 'AND_WITH_MATCHING_RESOURCE']),
  enabled: z.boolean().optional(),
  notificationChannels: z.array(z.string()).optional(),
  alertStrategy: z
    .strictObject({
      notificationRateLimit: z.strictObject({ period: duration }).optional(),
      autoClose: duration.optional(),
      notificationPrompts: z
        .array(z.enum(['NOTIFICATION_PROMPT_UNSPECIFIED', 'OPENED', 'CLOSED']))
        .optional(),
      notificationChannelStrategy: z.array(z.unknown()).optional(),
    })
    .optional(),
  severity: z.enum(['SEVERITY_UNSPECIFIED', 'CRITICAL', 'ERROR', 'WARNING']).optional(),
});
const channelBody = z.strictObject({
  type: z.enum(['pubsub', 'email', 'webhook_tokenauth', 'webhook_basicauth', 'slack', 'pagerduty', 'sms']),
  displayName: z.string().optional(),
  description: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  userLabels: labels.optional(),
  enabled: z.boolean().optional(),
});

type Resource = Record<string, unknown>;

/** The server-side `filter` of list calls: only `displayName = "…"` is understood; anything else is a 400. */
function listFilter(raw: string | null): (r: Resource) => boolean {
  if (!raw) return () => true;
  const m = /^\s*display_?[nN]ame\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(raw);
  if (!m) return invalid(`Unsupported filter: ${raw}`);
  const want = (m[1] ?? '').replace(/\\(.)/g, '$1');
  return (r) => r.displayName === want;
}

export interface MonitoringModule extends ApiModule {
  dashboards(): Resource[];
}

export function monitoringModule(facts: ProjectFacts): MonitoringModule {
  const { project, projectNumber } = facts;
  const policies = new Map<string, Resource>();
  const channels = new Map<string, Resource>();
  const dashboards = new Map<string, Resource>();
  let seq = 0;
  const id = (): string => String(10_000_000_000_000_000_000n + BigInt(++seq) * 7_919n);
  const known = (p: Params): void => {
    if (p.project !== project && p.project !== projectNumber) notFound(`Project ${p.project}`);
  };
  const record = (): Resource => ({ mutateTime: now(), mutatedBy: 'rehearsal@example.com' });
  const list = (store: Map<string, Resource>, key: string, req: { query: URLSearchParams }) => {
    const items = [...store.values()].filter(listFilter(req.query.get('filter')));
    return { status: 200, body: items.length ? { [key]: items, totalSize: items.length } : {} };
  };
  const one = (store: Map<string, Resource>, name: string): Resource => store.get(name) ?? notFound(name);

  const route = router([
    [
      'GET /v3/projects/{project}/alertPolicies',
      (req, p) => (known(p), list(policies, 'alertPolicies', req)),
    ],
    [
      'POST /v3/projects/{project}/alertPolicies',
      (req, p) => {
        known(p);
        const body = parse(policyBody, req.body, 'AlertPolicy');
        for (const c of body.notificationChannels ?? [])
          if (!channels.has(c)) invalid(`Notification channel ${c} does not exist`);
        const name = `projects/${project}/alertPolicies/${id()}`;
        const conditions = body.conditions.map((c, i) => ({ ...c, name: `${name}/conditions/${id()}${i}` }));
        const policy = {
          ...body,
          name,
          conditions,
          enabled: body.enabled ?? true,
          creationRecord: record(),
          mutationRecord: record(),
        };
        policies.set(name, policy);
        return { status: 200, body: policy };
      },
    ],
    [
      'GET /v3/projects/{project}/alertPolicies/{id}',
      (_req, p) => ({ status: 200, body: one(policies, `projects/${project}/alertPolicies/${p.id}`) }),
    ],
    [
      'DELETE /v3/projects/{project}/alertPolicies/{id}',
      (_req, p) => {
        const name = `projects/${project}/alertPolicies/${p.id}`;
        one(policies, name);
        policies.delete(name);
        return { status: 200, body: {} };
      },
    ],
    [
      'GET /v3/projects/{project}/notificationChannels',
      (req, p) => (known(p), list(channels, 'notificationChannels', req)),
    ],
    [
      'POST /v3/projects/{project}/notificationChannels',
      (req, p) => {
        known(p);
        const body = parse(channelBody, req.body, 'NotificationChannel');
        if (body.type === 'pubsub' && !/^projects\/[^/]+\/topics\/[^/]+$/.test(body.labels?.topic ?? '')) {
          invalid('A pubsub channel needs labels.topic = projects/<project>/topics/<topic>');
        }
        const name = `projects/${project}/notificationChannels/${id()}`;
        const channel = {
          ...body,
          name,
          enabled: body.enabled ?? true,
          creationRecord: record(),
          mutationRecords: [record()],
        };
        channels.set(name, channel);
        return { status: 200, body: channel };
      },
    ],
    [
      'GET /v3/projects/{project}/notificationChannels/{id}',
      (_req, p) => ({ status: 200, body: one(channels, `projects/${project}/notificationChannels/${p.id}`) }),
    ],
    [
      'DELETE /v3/projects/{project}/notificationChannels/{id}',
      (req, p) => {
        const name = `projects/${project}/notificationChannels/${p.id}`;
        one(channels, name);
        const usedBy = [...policies.values()].filter((x) =>
          (x.notificationChannels as string[] | undefined)?.includes(name),
        );
        if (usedBy.length && req.query.get('force')?.toLowerCase() !== 'true') {
          fail(
            400,
            'FAILED_PRECONDITION',
            `Notification channel ${name} is used by ${usedBy.length} alert policies`,
          );
        }
        for (const x of usedBy)
          x.notificationChannels = (x.notificationChannels as string[]).filter((c) => c !== name);
        channels.delete(name);
        return { status: 200, body: {} };
      },
    ],
    [
      'GET /v1/projects/{project}/dashboards',
      (_req, p) => (
        known(p),
        { status: 200, body: dashboards.size ? { dashboards: [...dashboards.values()] } : {} }
      ),
    ],
    [
      'POST /v1/projects/{project}/dashboards',
      (req, p) => {
        known(p);
        const body = parse(dashboardSchema, req.body, 'Dashboard');
        const name = `projects/${projectNumber}/dashboards/${randomUUID()}`;
        const dashboard = { ...body, name, etag: randomUUID().slice(0, 8) };
        if (req.query.get('validateOnly') !== 'true') dashboards.set(name, dashboard);
        return { status: 200, body: dashboard };
      },
    ],
    [
      'GET /v1/projects/{project}/dashboards/{id}',
      (_req, p) => ({ status: 200, body: one(dashboards, `projects/${projectNumber}/dashboards/${p.id}`) }),
    ],
    [
      'PATCH /v1/projects/{project}/dashboards/{id}',
      (req, p) => {
        const name = `projects/${projectNumber}/dashboards/${p.id}`;
        const current = one(dashboards, name);
        const body = parse(dashboardSchema, req.body, 'Dashboard');
        if (body.etag !== undefined && body.etag !== current.etag)
          fail(409, 'ABORTED', 'The dashboard was changed concurrently (etag).');
        const next = { ...body, name, etag: randomUUID().slice(0, 8) };
        dashboards.set(name, next);
        return { status: 200, body: next };
      },
    ],
    [
      'DELETE /v1/projects/{project}/dashboards/{id}',
      (_req, p) => {
        const name = `projects/${projectNumber}/dashboards/${p.id}`;
        one(dashboards, name);
        dashboards.delete(name);
        return { status: 200, body: {} };
      },
    ],
  ]);
  return {
    name: 'monitoring',
    handle: guard(route),
    inventory: () => [
      ...[...policies.keys()].map((name) => ({ kind: 'alertPolicy', name })),
      ...[...channels.keys()].map((name) => ({ kind: 'notificationChannel', name })),
      ...[...dashboards.keys()].map((name) => ({ kind: 'dashboard', name })),
    ],
    dashboards: () => [...dashboards.values()],
  };
}
