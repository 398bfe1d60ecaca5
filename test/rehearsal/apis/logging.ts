/**
 * Cloud Logging v2 sinks. A project sink's `writerIdentity` is the project's Logging service agent
 * (https://cloud.google.com/logging/docs/export/configure_export_v2#dest-auth); the filter is
 * checked for balanced quotes and parentheses, the way a malformed one is refused with 400.
 */
import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import { alreadyExists, applyMask, guard, invalid, notFound, now, parse, router } from './kit';

const sinkBody = z.strictObject({
  name: z.string().regex(/^[\w.-]{1,100}$/),
  destination: z
    .string()
    .regex(
      /^(pubsub\.googleapis\.com\/projects\/[^/]+\/topics\/[^/]+|storage\.googleapis\.com\/[^/]+|bigquery\.googleapis\.com\/projects\/[^/]+\/datasets\/\w+|logging\.googleapis\.com\/projects\/[^/]+\/locations\/[^/]+\/buckets\/[^/]+)$/,
      'not a sink destination',
    ),
  filter: z.string().optional(),
  description: z.string().optional(),
  disabled: z.boolean().optional(),
  exclusions: z.array(z.unknown()).optional(),
  includeChildren: z.boolean().optional(),
});

/** Balanced double quotes (with backslash escapes) and parentheses outside quotes. */
export function filterIsWellFormed(filter: string): boolean {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return depth === 0 && !quoted;
}

export function loggingModule(facts: ProjectFacts): ApiModule {
  const { project, projectNumber } = facts;
  const sinks = new Map<string, Record<string, unknown>>();
  const known = (p: string | undefined): void => {
    if (p !== project && p !== projectNumber) notFound(`Project ${p}`);
  };
  const sinkOf = (p: Record<string, string>): Record<string, unknown> => {
    known(p.project);
    return sinks.get(p.sink ?? '') ?? notFound(`Sink ${p.sink}`);
  };
  const check = (filter: string | undefined): void => {
    if (filter !== undefined && !filterIsWellFormed(filter)) invalid(`Invalid filter: ${filter}`);
  };
  const route = router([
    [
      'POST /v2/projects/{project}/sinks',
      (req, p) => {
        known(p.project);
        const body = parse(sinkBody, req.body, 'LogSink');
        check(body.filter);
        if (sinks.has(body.name)) alreadyExists(`Sink ${body.name}`);
        const t = now();
        const sink = {
          ...body,
          writerIdentity: `serviceAccount:service-${projectNumber}@gcp-sa-logging.iam.gserviceaccount.com`,
          createTime: t,
          updateTime: t,
        };
        sinks.set(body.name, sink);
        return { status: 200, body: sink };
      },
    ],
    ['GET /v2/projects/{project}/sinks/{sink}', (_req, p) => ({ status: 200, body: sinkOf(p) })],
    [
      'PUT /v2/projects/{project}/sinks/{sink}',
      (req, p) => {
        const sink = sinkOf(p);
        const body = parse(sinkBody, req.body, 'LogSink');
        check(body.filter);
        const next = { ...applyMask(sink, body, req.query.get('updateMask')), updateTime: now() };
        sinks.set(p.sink ?? '', next);
        return { status: 200, body: next };
      },
    ],
    [
      'DELETE /v2/projects/{project}/sinks/{sink}',
      (_req, p) => {
        sinkOf(p);
        sinks.delete(p.sink ?? '');
        return { status: 200, body: {} };
      },
    ],
  ]);
  return {
    name: 'logging',
    handle: guard(route),
    inventory: () => [...sinks.keys()].map((n) => ({ kind: 'sink', name: `projects/${project}/sinks/${n}` })),
  };
}
