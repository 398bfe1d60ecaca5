/**
 * Cloud Scheduler v1 jobs with a Pub/Sub target; the target topic must be a full topic name and the
 * schedule a five-field cron expression (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs).
 */
import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import { alreadyExists, duration, guard, invalid, notFound, now, parse, router } from './kit';

const jobBody = z.strictObject({
  name: z.string(),
  description: z.string().max(500).optional(),
  schedule: z
    .string()
    .refine((s) => s.trim().split(/\s+/).length === 5, 'schedule must have five cron fields'),
  timeZone: z.string().optional(),
  pubsubTarget: z
    .strictObject({
      topicName: z.string().regex(/^projects\/[^/]+\/topics\/[^/]+$/),
      data: z.base64().optional(),
      attributes: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  httpTarget: z.unknown().optional(),
  retryConfig: z
    .strictObject({
      retryCount: z.number().int().optional(),
      maxRetryDuration: duration.optional(),
      minBackoffDuration: duration.optional(),
      maxBackoffDuration: duration.optional(),
      maxDoublings: z.number().int().optional(),
    })
    .optional(),
  attemptDeadline: duration.optional(),
});

export function cloudSchedulerModule(facts: ProjectFacts): ApiModule {
  const jobs = new Map<string, Record<string, unknown>>();
  const parent = (p: Record<string, string>): string => {
    if (p.project !== facts.project) notFound(`Project ${p.project}`);
    return `projects/${facts.project}/locations/${p.location}`;
  };
  const jobOf = (p: Record<string, string>): Record<string, unknown> =>
    jobs.get(`${parent(p)}/jobs/${p.job}`) ?? notFound(`Job ${parent(p)}/jobs/${p.job}`);
  const route = router([
    [
      'POST /v1/projects/{project}/locations/{location}/jobs',
      (req, p) => {
        const body = parse(jobBody, req.body, 'Job');
        if (!body.name.startsWith(`${parent(p)}/jobs/`))
          invalid(`Job name ${body.name} is not under ${parent(p)}`);
        if (!body.pubsubTarget && !body.httpTarget) invalid('A job needs a target');
        if (jobs.has(body.name)) alreadyExists(`Job ${body.name}`);
        const job = { ...body, state: 'ENABLED', userUpdateTime: now(), scheduleTime: now() };
        jobs.set(body.name, job);
        return { status: 200, body: job };
      },
    ],
    [
      'GET /v1/projects/{project}/locations/{location}/jobs/{job}',
      (_req, p) => ({ status: 200, body: jobOf(p) }),
    ],
    [
      'DELETE /v1/projects/{project}/locations/{location}/jobs/{job}',
      (_req, p) => {
        jobOf(p);
        jobs.delete(`${parent(p)}/jobs/${p.job}`);
        return { status: 200, body: {} };
      },
    ],
  ]);
  return {
    name: 'cloudscheduler',
    handle: guard(route),
    inventory: () => [...jobs.keys()].map((name) => ({ kind: 'job', name })),
  };
}
