/**
 * Cloud Functions v2: runtimes, `generateUploadUrl` and the upload itself (the signed URL points
 * back at this module; the upload must be a zip and is good for one function create or patch, as
 * https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions/generateUploadUrl
 * describes), create/patch/delete as long-running operations with
 * `metadata.@type` OperationMetadata and BUILD/SERVICE/TRIGGER stages, done on the second poll.
 * What gcloud relies on afterwards is made too: the Cloud Run service (lower-case function id), and
 * for a Pub/Sub trigger the Eventarc trigger with its push subscription on the topic.
 */
import { randomUUID } from 'node:crypto';

import type { ApiModule, ApiRequest, ProjectFacts } from '../contract';
import type { EventarcModule } from './eventarc';
import { functionBody, templateOf, type FunctionBody } from './function-schema';
import type { Directory } from './iam-policy';
import {
  alreadyExists,
  applyMask,
  fail,
  guard,
  invalid,
  notFound,
  now,
  Operations,
  parse,
  router,
  type Params,
} from './kit';
import type { PubSubModule } from './pubsub';
import type { RunModule } from './run';

const PUBSUB_EVENT = 'google.cloud.pubsub.topic.v1.messagePublished';
const RUNTIMES = ['nodejs18', 'nodejs20', 'nodejs22', 'python311', 'python312', 'go122', 'java21'];

export interface FunctionsDeps {
  run: RunModule;
  eventarc: EventarcModule;
  pubsub: PubSubModule;
  directory: Directory;
  /** Whether a secret the function mounts exists (Cloud Functions refuses the deploy otherwise). */
  secretExists(id: string): boolean;
}

type Fn = FunctionBody & Record<string, unknown>;

export function cloudFunctionsModule(facts: ProjectFacts, deps: FunctionsDeps): ApiModule {
  const { project, projectNumber } = facts;
  const functions = new Map<string, Fn>();
  const uploads = new Map<string, 'issued' | 'uploaded'>();
  const ops = new Operations(2, 'type.googleapis.com/google.cloud.functions.v2.OperationMetadata');
  const bucket = (region: string) => `gcf-v2-uploads-${projectNumber}.${region}.cloudfunctions.appspot.com`;
  const parent = (p: Params): string => {
    if (p.project !== project && p.project !== projectNumber) notFound(`Project ${p.project}`);
    return `projects/${project}/locations/${p.region}`;
  };
  const fnOf = (p: Params): Fn => {
    const name = `${parent(p)}/functions/${p.fn}`;
    return functions.get(name) ?? notFound(`Function ${name}`);
  };
  const refuseAccount = (email: string | undefined, what: string): void => {
    const why = email ? deps.directory.refuseMember(`serviceAccount:${email}`) : undefined;
    if (why) invalid(`${what}: ${why}`);
  };

  /** What Cloud Functions checks before it builds: the upload, the identities, the secrets, the trigger. */
  const check = (f: FunctionBody, region: string): void => {
    const src = f.buildConfig?.source?.storageSource;
    if (!src) invalid('buildConfig.source.storageSource is required');
    if (src.bucket !== bucket(region) || uploads.get(src.object) !== 'uploaded') {
      fail(
        400,
        'FAILED_PRECONDITION',
        `Source gs://${src.bucket}/${src.object} was not uploaded through generateUploadUrl`,
      );
    }
    if (!RUNTIMES.includes(f.buildConfig?.runtime ?? ''))
      invalid(`Unsupported runtime ${f.buildConfig?.runtime}`);
    refuseAccount(f.buildConfig?.serviceAccount?.split('/').pop(), 'buildConfig.serviceAccount');
    refuseAccount(f.serviceConfig?.serviceAccountEmail, 'serviceConfig.serviceAccountEmail');
    refuseAccount(f.eventTrigger?.serviceAccountEmail, 'eventTrigger.serviceAccountEmail');
    const s = f.serviceConfig;
    for (const secret of [...(s?.secretEnvironmentVariables ?? []), ...(s?.secretVolumes ?? [])]) {
      if (!deps.secretExists(secret.secret))
        fail(400, 'FAILED_PRECONDITION', `Secret ${secret.secret} was not found`);
    }
    const t = f.eventTrigger;
    if (t && t.eventType !== PUBSUB_EVENT)
      invalid(`This stand-in serves Pub/Sub triggers only, not ${t.eventType}`);
    if (t && !t.pubsubTopic) invalid('eventTrigger.pubsubTopic is required for a Pub/Sub trigger');
  };

  /** Cloud Run service, Eventarc trigger and push subscription, as the deploy's stages make them. */
  const materialise = (name: string, f: Fn, region: string): Fn => {
    const id = name.split('/').pop() ?? '';
    const service = id.toLowerCase();
    deps.run.putService(
      region,
      service,
      templateOf(f, `${region}-docker.pkg.dev/${project}/gcf-artifacts/${service}:latest`),
      {},
    );
    const uri = `https://${service}-${projectNumber}.${region}.run.app`;
    const out: Fn = {
      ...f,
      name,
      environment: 'GEN_2',
      state: 'ACTIVE',
      url: `https://${region}-${project}.cloudfunctions.net/${id}`,
      updateTime: now(),
      serviceConfig: {
        ...f.serviceConfig,
        service: `projects/${project}/locations/${region}/services/${service}`,
        uri,
        revision: `${service}-00001-abc`,
      } as Fn['serviceConfig'],
    };
    const t = f.eventTrigger;
    if (t) {
      const previous = (functions.get(name)?.eventTrigger as { trigger?: string } | undefined)?.trigger;
      const trigger =
        previous ?? `projects/${project}/locations/${region}/triggers/${service}-${randomUUID().slice(0, 6)}`;
      if (!previous) {
        const subscription = `eventarc-${region}-${trigger.split('/').pop()}-sub-${randomUUID().slice(0, 3)}`;
        deps.pubsub.createSubscription(subscription, {
          topic: t.pubsubTopic,
          ackDeadlineSeconds: 600,
          pushConfig: { pushEndpoint: uri, oidcToken: { serviceAccountEmail: t.serviceAccountEmail ?? '' } },
          labels: { 'goog-eventarc': '' },
        });
        deps.eventarc.putTrigger({
          name: trigger,
          eventFilters: [{ attribute: 'type', value: PUBSUB_EVENT }],
          serviceAccount: t.serviceAccountEmail,
          destination: { cloudRun: { service, region } },
          transport: {
            pubsub: {
              topic: t.pubsubTopic,
              subscription: `projects/${project}/subscriptions/${subscription}`,
            },
          },
          labels: { 'goog-managed-by': 'cloudfunctions' },
        });
      }
      out.eventTrigger = {
        ...t,
        trigger,
        triggerRegion: region,
        retryPolicy: t.retryPolicy ?? 'RETRY_POLICY_DO_NOT_RETRY',
      };
    }
    return out;
  };

  const stages = (resource: string) =>
    ['BUILD', 'SERVICE', 'TRIGGER'].map((name) => ({ name, state: 'COMPLETE', message: '', resource }));
  const operation = (region: string, verb: string, target: string, response: unknown) =>
    ops.start(`projects/${project}/locations/${region}`, response, {
      createTime: now(),
      target,
      verb,
      apiVersion: 'v2',
      stages: stages(target),
    });

  const create = (req: ApiRequest, p: Params) => {
    const where = parent(p);
    const id = req.query.get('functionId') ?? invalid('functionId is required');
    if (!/^[A-Za-z][\w-]{0,62}$/.test(id)) invalid(`Invalid functionId ${id}`);
    const name = `${where}/functions/${id}`;
    if (functions.has(name)) alreadyExists(`Function ${name}`);
    const body = parse(functionBody, req.body, 'Function');
    check(body, p.region ?? '');
    uploads.delete(body.buildConfig?.source?.storageSource?.object ?? '');
    const fn = materialise(name, { ...body, createTime: now() }, p.region ?? '');
    functions.set(name, fn);
    return {
      status: 200,
      body: operation(p.region ?? '', 'create', name, {
        '@type': 'type.googleapis.com/google.cloud.functions.v2.Function',
        ...fn,
      }),
    };
  };

  const patch = (req: ApiRequest, p: Params) => {
    const current = fnOf(p);
    const body = parse(functionBody, req.body, 'Function');
    const next = applyMask(current, body as Fn, req.query.get('updateMask'));
    check(next, p.region ?? '');
    uploads.delete(next.buildConfig?.source?.storageSource?.object ?? '');
    const fn = materialise(current.name ?? '', next, p.region ?? '');
    functions.set(fn.name ?? '', fn);
    return {
      status: 200,
      body: operation(p.region ?? '', 'update', fn.name ?? '', {
        '@type': 'type.googleapis.com/google.cloud.functions.v2.Function',
        ...fn,
      }),
    };
  };

  const remove = (p: Params) => {
    const fn = fnOf(p);
    const region = p.region ?? '';
    deps.run.deleteService(region, (p.fn ?? '').toLowerCase());
    const trigger = (fn.eventTrigger as { trigger?: string } | undefined)?.trigger;
    if (trigger) {
      const removed = deps.eventarc.deleteTrigger(trigger) as
        { transport?: { pubsub?: { subscription?: string } } } | undefined;
      const subscription = removed?.transport?.pubsub?.subscription?.split('/').pop();
      if (subscription) deps.pubsub.deleteSubscription(subscription);
    }
    functions.delete(fn.name ?? '');
    return {
      status: 200,
      body: operation(region, 'delete', fn.name ?? '', {
        '@type': 'type.googleapis.com/google.protobuf.Empty',
      }),
    };
  };

  const base = '/v2/projects/{project}/locations/{region}';
  const route = router([
    [
      `GET ${base}/runtimes`,
      (_req, p) => (
        parent(p),
        {
          status: 200,
          body: {
            runtimes: RUNTIMES.map((name) => ({
              name,
              displayName: name,
              stage: 'GA',
              environment: 'GEN_2',
            })),
          },
        }
      ),
    ],
    [
      `POST ${base}/functions:generateUploadUrl`,
      (req, p) => {
        parent(p);
        if (req.body !== undefined && typeof req.body !== 'object')
          invalid('GenerateUploadUrlRequest must be an object');
        const object = `${randomUUID()}.zip`;
        uploads.set(object, 'issued');
        return {
          status: 200,
          body: {
            uploadUrl: `${req.base}/upload/${object}`,
            storageSource: { bucket: bucket(p.region ?? ''), object },
          },
        };
      },
    ],
    [
      'PUT /upload/{object}',
      (req, p) => {
        if (uploads.get(p.object ?? '') !== 'issued')
          fail(403, 'PERMISSION_DENIED', 'The upload URL is not valid (used or never issued)');
        if (req.raw.subarray(0, 4).toString('binary') !== 'PK\x03\x04')
          invalid('The upload is not a zip archive');
        if (!req.raw.includes('package.json')) invalid('The source archive holds no package.json');
        uploads.set(p.object ?? '', 'uploaded');
        return { status: 200, body: {} };
      },
    ],
    [`POST ${base}/functions`, create],
    [`GET ${base}/functions/{fn}`, (_req, p) => ({ status: 200, body: fnOf(p) })],
    [`PATCH ${base}/functions/{fn}`, patch],
    [`DELETE ${base}/functions/{fn}`, (_req, p) => remove(p)],
    [
      `GET ${base}/operations/{op}`,
      (_req, p) => ({ status: 200, body: ops.get(`${parent(p)}/operations/${p.op}`) }),
    ],
  ]);
  return {
    name: 'cloudfunctions',
    handle: guard(route),
    inventory: () => [...functions.keys()].map((name) => ({ kind: 'function', name })),
  };
}
