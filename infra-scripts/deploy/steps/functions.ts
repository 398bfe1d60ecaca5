import { httpFunctions, topicFunctions, type TopicFunctionName } from '../../../functions/catalog';
import { healthSweepDocument } from '../config';
import type { Step } from '../plan';
import { autoscalerLookups } from './groups';
import { forceLeaveFunctions, type Kit, type Part } from './kit';
import { short } from './names';
import { topicPublisher } from './pubsub';

/**
 * `--set-env-vars` for these variables. A value with a comma (a JSON document) needs gcloud's
 * alternate delimiter syntax (`^|^A=1|B=2`, `gcloud topic escaping`).
 */
export function envVarsFlag(env: Record<string, string>): string {
  const pairs = Object.entries(env).map(([key, v]) => `${key}=${v}`);
  if (!pairs.some((p) => p.includes(','))) return `--set-env-vars=${pairs.join(',')}`;
  if (pairs.some((p) => p.includes('|'))) throw new Error('an environment value holds both , and |');
  return `--set-env-vars=^|^${pairs.join('|')}`;
}

/**
 * Each function: own service account, retries, internal-only ingress, Consul tokens from Secret
 * Manager, Direct VPC egress to the servers' private HTTPS API; its trigger's subscription
 * dead-letters. Then the HTTP entry points of the deployed functions.
 */
export function functionSteps(k: Kit): Part {
  const { c } = k;
  const lookups: Record<string, string[]> = c.functions.includes('scalingAlerts') ? autoscalerLookups(k) : {};
  const steps = c.functions.flatMap((f) => {
    Object.assign(lookups, subscriptionLookups(k, f));
    return [...deployFunction(k, f, f), ...deadLetterSteps(k, f)];
  });
  for (const [entry, spec] of Object.entries(httpFunctions)) {
    if (c.functions.includes(spec.sameAs))
      steps.push(...deployFunction(k, spec.sameAs, entry, c.healthSweep[spec.invokers]));
  }
  return { steps, lookups };
}

/** What the function reads from its environment and from Secret Manager. */
function environment(k: Kit, f: TopicFunctionName) {
  const { c, n, inputs } = k;
  const env: Record<string, string> = {
    GOOGLE_CLOUD_PROJECT: c.project,
    CONSUL_HTTP_ADDR: `https://${n.consulIp(0)}:8501`,
    CONSUL_CACERT: '/secrets/consul-ca/ca.pem',
    CONSUL_TLS_SERVER_NAME: `server.${c.consul.datacenter}.consul`,
    ...(f === 'healthSweep' ? { HEALTH_SWEEP_CONFIG_JSON: JSON.stringify(healthSweepDocument(c)) } : {}),
    // scalingAlerts' rules, and healthSweep's for the lease pass it runs (only with scalingAlerts).
    ...((f === 'scalingAlerts' || f === 'healthSweep') && c.scalingRules
      ? { SCALING_RULES_JSON: JSON.stringify(c.scalingRules) }
      : {}),
  };
  const secrets = [
    ...(inputs.functionPolicies[f] !== undefined ? [`CONSUL_HTTP_TOKEN=${n.fnToken(f)}:latest`] : []),
    ...(forceLeaveFunctions(c, inputs).includes(f)
      ? [`CONSUL_FORCE_LEAVE_TOKEN=${n.fnForceLeaveToken(f)}:latest`]
      : []),
    '/secrets/consul-ca/ca.pem=consul-ca-cert:latest',
  ];
  return { env, secrets };
}

/**
 * The deploy of one entry point: a topic function's, or (with `httpInvokers`, its own IAM invokers)
 * an HTTP one sharing its account and tokens.
 */
function deployFunction(
  k: Kit,
  f: TopicFunctionName,
  entry: string,
  httpInvokers?: readonly string[],
): Step[] {
  const { c, n, P, labels } = k;
  const http = httpInvokers !== undefined;
  const spec = topicFunctions[f];
  const fnSa = n.fnSa(f);
  const { env, secrets } = environment(k, f);
  const deployArgs = [
    `--region=${c.region}`,
    '--gen2',
    '--runtime=nodejs22',
    '--source=.',
    '--ignore-file=infra-scripts/deploy/functions.gcloudignore',
    `--entry-point=${entry}`,
    // The HTTP entry point answers its caller: nothing to redeliver.
    ...(http
      ? ['--trigger-http']
      : [`--trigger-topic=${spec.trigger.topic}`, `--trigger-service-account=${fnSa}`, '--retry']),
    `--service-account=${fnSa}`,
    // Builds run as the deployment's build account (steps/identity.ts says why and what it holds).
    `--build-service-account=projects/${c.project}/serviceAccounts/${n.buildSa}`,
    `--concurrency=${spec.concurrency}`,
    '--cpu=1',
    `--memory=${spec.memory}`,
    `--max-instances=${spec.maxInstances}`,
    `--timeout=${spec.timeout}`,
    `--ingress-settings=${http ? c.healthSweep.httpIngress : 'internal-only'}`,
    '--no-allow-unauthenticated',
    envVarsFlag(env),
    `--set-secrets=${secrets.join(',')}`,
  ];
  const hash = short([k.inputs.sourceHash, ...deployArgs].join('\n'));
  const region = `--region=${c.region}`;
  const svc = n.fnService(entry);
  // Who may invoke: the trigger's identity for an event function; for an HTTP one, only the
  // operators the config names for it (never allUsers: the config accepts groups, users and accounts).
  const invokers = httpInvokers ?? [`serviceAccount:${fnSa}`];
  return [
    k.step(
      `function-${entry}`,
      http
        ? `function ${entry} (HTTP, IAM invokers only: ${invokers.join(', ') || 'none yet'})`
        : `function ${entry} (concurrency ${spec.concurrency}, max ${spec.maxInstances} instances)`,
      {
        args: ['functions', 'describe', entry, region, ...P, '--format=value(labels.config_hash)'],
        expect: { equals: hash },
      },
      k.cmd('functions', 'deploy', entry, ...deployArgs, `--update-labels=${labels},config_hash=${hash}`),
    ),
    // Set on the function's Cloud Run service: `gcloud functions deploy` of the Cloud SDK this
    // deploy supports (528) has no Direct VPC flags; Google's page asks for a newer gcloud
    // (README.md): https://cloud.google.com/functions/docs/running/direct-vpc
    k.step(
      `function-${entry}-egress`,
      `function ${entry}: Direct VPC egress through ${n.fnSubnet}`,
      // The network interfaces are a JSON string inside the service's annotations.
      {
        args: ['run', 'services', 'describe', svc, region, ...P, '--format=json'],
        expect: { contains: n.fnSubnet },
      },
      k.cmd(
        'run',
        'services',
        'update',
        svc,
        region,
        `--network=${n.network}`,
        `--subnet=${n.fnSubnet}`,
        '--vpc-egress=private-ranges-only',
      ),
    ),
    ...invokers.map((member) =>
      k.step(
        http ? `function-${entry}-invoker-${member}` : `function-${entry}-invoker`,
        http
          ? `function ${entry}: ${member} may invoke it`
          : `function ${entry}: its trigger's identity may invoke it`,
        k.hasBinding(['run', 'services', 'get-iam-policy', svc, region], 'roles/run.invoker', member),
        k.cmd('functions', 'add-invoker-policy-binding', entry, region, `--member=${member}`),
      ),
    ),
  ];
}

/** The subscription Eventarc made for the function's trigger: known once the function exists. */
function subscriptionLookups(k: Kit, f: TopicFunctionName): Record<string, string[]> {
  const { c, P } = k;
  return {
    [`trigger-${f}`]: [
      'functions',
      'describe',
      f,
      `--region=${c.region}`,
      ...P,
      '--format=value(eventTrigger.trigger)',
    ],
    [`subscription-${f}`]: [
      'eventarc',
      'triggers',
      'describe',
      `@{trigger-${f}}`,
      `--location=${c.region}`,
      ...P,
      '--format=value(transport.pubsub.subscription)',
    ],
  };
}

/** The trigger's subscription dead-letters to the function's dead-letter topic after ten tries. */
function deadLetterSteps(k: Kit, f: TopicFunctionName): Step[] {
  const { P, n } = k;
  const deadLetter = `${topicFunctions[f].trigger.topic}-dead-letter`;
  const sub = `@{subscription-${f}}`;
  // Pub/Sub's own agent moves dead letters: it publishes to the dead-letter topic and acks the source.
  const pubsubAgent = n.pubsubAgent;
  return [
    k.step(
      `function-${f}-dead-letter`,
      `function ${f}: its trigger's subscription dead-letters to ${deadLetter}`,
      {
        args: [
          'pubsub',
          'subscriptions',
          'describe',
          sub,
          ...P,
          '--format=value(deadLetterPolicy.deadLetterTopic)',
        ],
        expect: { contains: `/topics/${deadLetter}` },
      },
      k.cmd(
        'pubsub',
        'subscriptions',
        'update',
        sub,
        `--dead-letter-topic=${deadLetter}`,
        '--max-delivery-attempts=10',
        '--min-retry-delay=10s',
        '--max-retry-delay=600s',
      ),
    ),
    topicPublisher(
      k,
      `function-${f}-dead-letter-publisher`,
      deadLetter,
      pubsubAgent,
      'the Pub/Sub service agent',
    ),
    k.iamGrant(
      `function-${f}-dead-letter-subscriber`,
      `the Pub/Sub service agent acknowledges dead letters of ${f}'s subscription`,
      ['pubsub', 'subscriptions'],
      sub,
      'roles/pubsub.subscriber',
      pubsubAgent,
    ),
  ];
}
