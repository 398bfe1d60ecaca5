/**
 * Every stand-in API module of the rehearsal, wired together: the IAM module's directory checks the
 * members and custom roles of every policy, and Cloud Functions makes its Cloud Run service,
 * Eventarc trigger and Pub/Sub subscription in those modules.
 */
import type { ApiModule, ProjectFacts } from '../contract';
import type { StandIn } from '../server';
import { cloudBuildModule } from './cloudbuild';
import { cloudFunctionsModule } from './cloudfunctions';
import { cloudSchedulerModule } from './cloudscheduler';
import { eventarcModule } from './eventarc';
import { iamModule } from './iam';
import { PolicyStore } from './iam-policy';
import { loggingModule } from './logging';
import { monitoringModule } from './monitoring';
import { pubsubModule } from './pubsub';
import { resourceManagerModule } from './resourcemanager';
import { runModule } from './run';
import { secretManagerModule } from './secretmanager';
import { serviceUsageModule } from './serviceusage';

export interface ApiModuleOptions {
  /** The clock of the IAM module's 7-day undelete window. */
  clock?: () => number;
}

export function allApiModules(facts: ProjectFacts, options: ApiModuleOptions = {}): ApiModule[] {
  const iam = iamModule(facts, options.clock);
  const policies = () => new PolicyStore(iam.directory);
  const secrets = secretManagerModule(facts, policies());
  const pubsub = pubsubModule(facts, policies());
  const run = runModule(facts, policies());
  const eventarc = eventarcModule(facts);
  const functions = cloudFunctionsModule(facts, {
    run,
    eventarc,
    pubsub,
    directory: iam.directory,
    secretExists: (id) => secrets.inventory().some((s) => s.name.endsWith(`/secrets/${id}`)),
  });
  return [
    iam,
    resourceManagerModule(facts, policies()),
    secrets,
    pubsub,
    loggingModule(facts),
    monitoringModule(facts),
    cloudSchedulerModule(facts),
    eventarc,
    run,
    functions,
    serviceUsageModule(facts),
    cloudBuildModule(facts),
  ];
}

/**
 * gcloud reaches Cloud Run on a regional host it derives from the endpoint override
 * (`us-central1-<host>`), which does not resolve; with gcloud's HTTP proxy set to the stand-in,
 * every request arrives there in absolute form and is routed by its path as usual. NB: while this
 * is set, requests for other local servers (the Compute emulator) also arrive at the stand-in, and an
 * API without an override is tunnelled (CONNECT), which the stand-in refuses: gcloud then fails
 * with RemoteDisconnected, and that API needs a module.
 */
export function standInProxyEnvironment(standIn: StandIn): Record<string, string> {
  const { hostname, port } = new URL(standIn.url);
  return {
    CLOUDSDK_PROXY_TYPE: 'http',
    CLOUDSDK_PROXY_ADDRESS: hostname,
    CLOUDSDK_PROXY_PORT: port,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: 'http://run.stand-in.invalid/run/',
  };
}
