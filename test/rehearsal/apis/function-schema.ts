/**
 * The Cloud Functions v2 `Function` body as the API takes it on create and patch
 * (https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#Function),
 * and the Knative revision template its Cloud Run service gets from it.
 */
import { z } from 'zod';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name');
/** Names Cloud Run sets itself (https://cloud.google.com/run/docs/container-contract#env-vars). */
const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_REVISION', 'K_CONFIGURATION']);
const env = z
  .record(envName, z.string())
  .refine(
    (e) => !Object.keys(e).some((k) => RESERVED_ENV.has(k) || k.startsWith('X_GOOGLE_')),
    'reserved environment variable',
  );

const storageSource = z.strictObject({
  bucket: z.string(),
  object: z.string(),
  generation: z.string().optional(),
});
const buildConfig = z.strictObject({
  runtime: z.string().optional(),
  entryPoint: z
    .string()
    .regex(/^[A-Za-z_$][\w$.]*$/)
    .optional(),
  source: z
    .strictObject({ storageSource: storageSource.optional(), repoSource: z.unknown().optional() })
    .optional(),
  environmentVariables: env.optional(),
  dockerRepository: z.string().optional(),
  dockerRegistry: z
    .enum(['DOCKER_REGISTRY_UNSPECIFIED', 'CONTAINER_REGISTRY', 'ARTIFACT_REGISTRY'])
    .optional(),
  serviceAccount: z
    .string()
    .regex(/^projects\/[^/]+\/serviceAccounts\/[^/]+$/)
    .optional(),
  workerPool: z.string().optional(),
  automaticUpdatePolicy: z.strictObject({}).optional(),
  onDeployUpdatePolicy: z.strictObject({}).optional(),
});
const secretEnv = z.strictObject({
  key: envName,
  projectId: z.string().optional(),
  secret: z.string(),
  version: z.string(),
});
const secretVolume = z.strictObject({
  mountPath: z.string().regex(/^\/[^\0]*$/),
  projectId: z.string().optional(),
  secret: z.string(),
  versions: z.array(z.strictObject({ version: z.string(), path: z.string() })).optional(),
});
const serviceConfig = z
  .strictObject({
    timeoutSeconds: z.number().int().min(1).max(3600).optional(),
    availableMemory: z
      .string()
      .regex(/^\d+(\.\d+)?(k|M|G|Mi|Gi)?$/)
      .optional(),
    availableCpu: z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .optional(),
    environmentVariables: env.optional(),
    maxInstanceCount: z.number().int().min(0).optional(),
    minInstanceCount: z.number().int().min(0).optional(),
    vpcConnector: z.string().optional(),
    vpcConnectorEgressSettings: z
      .enum(['VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED', 'PRIVATE_RANGES_ONLY', 'ALL_TRAFFIC'])
      .optional(),
    ingressSettings: z
      .enum(['INGRESS_SETTINGS_UNSPECIFIED', 'ALLOW_ALL', 'ALLOW_INTERNAL_ONLY', 'ALLOW_INTERNAL_AND_GCLB'])
      .optional(),
    serviceAccountEmail: z.string().optional(),
    allTrafficOnLatestRevision: z.boolean().optional(),
    secretEnvironmentVariables: z.array(secretEnv).optional(),
    secretVolumes: z.array(secretVolume).optional(),
    maxInstanceRequestConcurrency: z.number().int().min(1).max(1000).optional(),
    securityLevel: z.enum(['SECURITY_LEVEL_UNSPECIFIED', 'SECURE_ALWAYS', 'SECURE_OPTIONAL']).optional(),
    binaryAuthorizationPolicy: z.string().optional(),
    // Output only: accepted and replaced, as the API ignores them on input.
    service: z.string().optional(),
    uri: z.string().optional(),
    revision: z.string().optional(),
  })
  // "Concurrency greater than 1 requires at least 1 CPU" (https://cloud.google.com/functions/docs/configuring/concurrency).
  .refine((s) => (s.maxInstanceRequestConcurrency ?? 1) <= 1 || Number(s.availableCpu ?? 0) >= 1, {
    message: 'maxInstanceRequestConcurrency > 1 needs availableCpu >= 1',
  });
const eventTrigger = z.strictObject({
  triggerRegion: z.string().optional(),
  eventType: z.string(),
  eventFilters: z
    .array(z.strictObject({ attribute: z.string(), value: z.string(), operator: z.string().optional() }))
    .optional(),
  pubsubTopic: z
    .string()
    .regex(/^projects\/[^/]+\/topics\/[^/]+$/)
    .optional(),
  serviceAccountEmail: z.string().optional(),
  retryPolicy: z
    .enum(['RETRY_POLICY_UNSPECIFIED', 'RETRY_POLICY_DO_NOT_RETRY', 'RETRY_POLICY_RETRY'])
    .optional(),
  channel: z.string().optional(),
  service: z.string().optional(),
  trigger: z.string().optional(),
});

export const functionBody = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  environment: z.enum(['ENVIRONMENT_UNSPECIFIED', 'GEN_1', 'GEN_2']).optional(),
  buildConfig: buildConfig.optional(),
  serviceConfig: serviceConfig.optional(),
  eventTrigger: eventTrigger.optional(),
  labels: z
    .record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/), z.string().regex(/^[a-z0-9_-]{0,63}$/))
    .optional(),
  kmsKeyName: z.string().optional(),
  // Output only, as above.
  state: z.string().optional(),
  url: z.string().optional(),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
});
export type FunctionBody = z.infer<typeof functionBody>;

/** The Cloud Run revision template a function's service runs, from its serviceConfig. */
export function templateOf(
  f: FunctionBody,
  image: string,
): {
  metadata: { annotations: Record<string, string> };
  spec: Record<string, unknown>;
} {
  const s = f.serviceConfig ?? {};
  const env = [
    ...Object.entries(s.environmentVariables ?? {}).map(([name, value]) => ({ name, value })),
    ...(s.secretEnvironmentVariables ?? []).map((e) => ({
      name: e.key,
      valueFrom: { secretKeyRef: { name: e.secret, key: e.version } },
    })),
  ];
  const annotations: Record<string, string> = {};
  if (s.maxInstanceCount) annotations['autoscaling.knative.dev/maxScale'] = String(s.maxInstanceCount);
  return {
    metadata: { annotations },
    spec: {
      containerConcurrency: s.maxInstanceRequestConcurrency ?? 1,
      timeoutSeconds: s.timeoutSeconds ?? 60,
      serviceAccountName: s.serviceAccountEmail,
      containers: [
        {
          name: 'worker',
          image,
          ports: [{ name: 'http1', containerPort: 8080 }],
          env,
          resources: { limits: { cpu: s.availableCpu ?? '0.1666', memory: s.availableMemory ?? '256M' } },
          volumeMounts: (s.secretVolumes ?? []).map((v) => ({ name: v.secret, mountPath: v.mountPath })),
        },
      ],
      volumes: (s.secretVolumes ?? []).map((v) => ({
        name: v.secret,
        secret: {
          secretName: v.secret,
          items: (v.versions ?? []).map((x) => ({ key: x.version, path: x.path })),
        },
      })),
    },
  };
}
