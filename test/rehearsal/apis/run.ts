/**
 * Cloud Run, as gcloud run speaks to it: the Knative-style v1 API
 * (`/apis/serving.knative.dev/v1/namespaces/{project}/services/{name}`) on a regional endpoint, and
 * the v1/v2 IAM methods. gcloud derives the regional endpoint by prefixing the host with the region
 * (`us-central1-<host>`), so the rehearsal reaches this module through gcloud's HTTP proxy setting
 * (see `standInProxyEnvironment` in index.ts). A gen2 function's service is made by the functions
 * module; `replaceService` (what `gcloud run services update` sends) is reconciled one read later,
 * as a new revision is (https://cloud.google.com/run/docs/reference/rest/v1/namespaces.services).
 */
import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import type { PolicyStore } from './iam-policy';
import { guard, invalid, notFound, now, parse, router, type Params } from './kit';

type Knative = Record<string, unknown> & {
  metadata: Record<string, unknown> & {
    name: string;
    generation: number;
    annotations?: Record<string, string>;
  };
  spec: {
    template: {
      metadata?: { annotations?: Record<string, string>; name?: string };
      spec: Record<string, unknown>;
    };
  };
  status?: Record<string, unknown>;
};

const annotations = z.record(z.string(), z.string());
const replaceBody = z.strictObject({
  apiVersion: z.literal('serving.knative.dev/v1'),
  kind: z.literal('Service'),
  metadata: z.looseObject({
    name: z.string(),
    annotations: annotations.optional(),
    labels: annotations.optional(),
  }),
  spec: z.strictObject({
    template: z.strictObject({
      metadata: z
        .looseObject({ annotations: annotations.optional(), name: z.string().optional() })
        .optional(),
      spec: z.looseObject({
        containers: z
          .array(z.looseObject({ image: z.string().optional() }))
          .min(1)
          .max(10),
      }),
    }),
    traffic: z.array(z.looseObject({ percent: z.number().int().min(0).max(100).optional() })).optional(),
  }),
  status: z.unknown().optional(),
});
const networkInterfaces = z.array(
  z.strictObject({
    network: z.string().optional(),
    subnetwork: z.string().optional(),
    tags: z.array(z.string()).optional(),
  }),
);

/** Direct VPC egress annotations (https://cloud.google.com/run/docs/configuring/vpc-direct-vpc). */
function checkTemplate(template: Knative['spec']['template']): void {
  const a = template.metadata?.annotations ?? {};
  const ni = a['run.googleapis.com/network-interfaces'];
  if (ni !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(ni);
    } catch {
      invalid(`run.googleapis.com/network-interfaces is not JSON: ${ni}`);
    }
    const r = networkInterfaces.safeParse(parsed);
    if (!r.success || r.data.length !== 1 || !(r.data[0]?.network ?? r.data[0]?.subnetwork)) {
      invalid(`run.googleapis.com/network-interfaces must name one network or subnetwork: ${ni}`);
    }
  }
  const egress = a['run.googleapis.com/vpc-access-egress'];
  if (egress !== undefined && !['all-traffic', 'private-ranges-only'].includes(egress)) {
    invalid(`run.googleapis.com/vpc-access-egress: ${egress}`);
  }
}

export interface RunModule extends ApiModule {
  /** A function's service, as Cloud Functions creates or updates it. */
  putService(
    region: string,
    name: string,
    template: Knative['spec']['template'],
    labels: Record<string, string>,
  ): void;
  deleteService(region: string, name: string): void;
  service(region: string, name: string): Knative | undefined;
}

export function runModule(facts: ProjectFacts, policies: PolicyStore): RunModule {
  const { project, projectNumber } = facts;
  const services = new Map<string, { region: string; body: Knative; pending: boolean }>();
  const iamName = (region: string, name: string): string =>
    `projects/${project}/locations/${region}/services/${name}`;

  const reconciled = (s: { region: string; body: Knative }): Knative => {
    const { body } = s;
    const revision = `${body.metadata.name}-${String(body.metadata.generation).padStart(5, '0')}-${randomUUID().slice(0, 3)}`;
    const url = `https://${body.metadata.name}-${projectNumber}.${s.region}.run.app`;
    const ready = (type: string) => ({ type, status: 'True', lastTransitionTime: now() });
    body.status = {
      observedGeneration: body.metadata.generation,
      conditions: [ready('Ready'), ready('ConfigurationsReady'), ready('RoutesReady')],
      latestReadyRevisionName: revision,
      latestCreatedRevisionName: revision,
      traffic: [{ revisionName: revision, percent: 100, latestRevision: true }],
      url,
      address: { url },
    };
    return body;
  };
  const serviceOf = (p: Params) => {
    if (p.ns !== project && p.ns !== projectNumber) notFound(`Namespace ${p.ns}`);
    const region = p.region ?? [...services.values()].find((s) => s.body.metadata.name === p.name)?.region;
    const s = services.get(`${region}/${p.name}`);
    if (!s) notFound(`Service ${p.name}`);
    if (s.pending) {
      s.pending = false;
      reconciled(s);
    }
    return s;
  };
  const knativePath = '/apis/serving.knative.dev/v1/namespaces/{ns}/services/{name}';
  const iamPaths = ['/{v}/projects/{ns}/locations/{region}/services/{name}'];
  /** The revision gcloud reads before it replaces a service: the latest ready one only. */
  const revisionOf = (p: Params): Knative => {
    const s = [...services.values()].find((x) => x.body.status?.latestReadyRevisionName === p.name);
    if (!s || (p.ns !== project && p.ns !== projectNumber)) notFound(`Revision ${p.name}`);
    const { template } = s.body.spec;
    return {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Revision',
      metadata: {
        name: p.name ?? '',
        namespace: projectNumber,
        generation: 1,
        labels: { 'serving.knative.dev/service': s.body.metadata.name },
        annotations: template.metadata?.annotations ?? {},
      },
      spec: template.spec as Knative['spec'],
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
  };
  const route = router([
    [
      'GET /apis/serving.knative.dev/v1/namespaces/{ns}/revisions/{name}',
      (_req, p) => ({ status: 200, body: revisionOf(p) }),
    ],
    ['GET ' + knativePath, (_req, p) => ({ status: 200, body: serviceOf(p).body })],
    [
      'PUT ' + knativePath,
      (req, p) => {
        const s = serviceOf(p);
        const body = parse(replaceBody, req.body, 'Service') as unknown as Knative;
        if (body.metadata.name !== p.name) invalid('metadata.name does not match the URL');
        checkTemplate(body.spec.template);
        s.body = {
          ...body,
          metadata: { ...s.body.metadata, ...body.metadata, generation: s.body.metadata.generation + 1 },
        };
        s.body.status = { ...(s.body.status ?? {}), conditions: [{ type: 'Ready', status: 'Unknown' }] };
        s.pending = true;
        return { status: 200, body: s.body };
      },
    ],
    ...iamPaths.flatMap(
      (path) =>
        [
          [
            `GET ${path}:getIamPolicy`,
            (req, p) => (serviceOf(p), policies.get(iamName(p.region ?? '', p.name ?? ''), req)),
          ],
          [
            `POST ${path}:getIamPolicy`,
            (req, p) => (serviceOf(p), policies.get(iamName(p.region ?? '', p.name ?? ''), req)),
          ],
          [
            `POST ${path}:setIamPolicy`,
            (req, p) => (serviceOf(p), policies.set(iamName(p.region ?? '', p.name ?? ''), req)),
          ],
        ] satisfies Parameters<typeof router>[0],
    ),
  ]);

  return {
    name: 'run',
    handle: guard(route),
    inventory: () => [...services.keys()].map((k) => ({ kind: 'service', name: k })),
    putService: (region, name, template, labels) => {
      const existing = services.get(`${region}/${name}`);
      const generation = (existing?.body.metadata.generation ?? 0) + 1;
      const body: Knative = {
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata: {
          name,
          namespace: projectNumber,
          selfLink: `/apis/serving.knative.dev/v1/namespaces/${projectNumber}/services/${name}`,
          uid: randomUUID(),
          generation,
          creationTimestamp: now(),
          labels: { 'cloud.googleapis.com/location': region, 'goog-managed-by': 'cloudfunctions', ...labels },
          annotations: {
            'run.googleapis.com/ingress': 'internal',
            'cloudfunctions.googleapis.com/function-id': name,
          },
        },
        spec: {
          template: {
            ...template,
            metadata: { ...existing?.body.spec.template.metadata, ...template.metadata },
          },
        },
      };
      body.spec = { ...body.spec, traffic: [{ percent: 100, latestRevision: true }] } as Knative['spec'];
      services.set(`${region}/${name}`, { region, body: reconciled({ region, body }), pending: false });
    },
    deleteService: (region, name) => {
      services.delete(`${region}/${name}`);
      policies.drop(iamName(region, name));
    },
    service: (region, name) => services.get(`${region}/${name}`)?.body,
  };
}
