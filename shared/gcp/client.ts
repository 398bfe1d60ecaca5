import type { AutoscalersClient } from '@google-cloud/compute/build/src/v1/autoscalers_client';
import type { InstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/instance_group_managers_client';
import type { InstanceTemplatesClient } from '@google-cloud/compute/build/src/v1/instance_templates_client';
import type { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client';
import type { RegionAutoscalersClient } from '@google-cloud/compute/build/src/v1/region_autoscalers_client';
import type { RegionInstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/region_instance_group_managers_client';
import type { RegionOperationsClient } from '@google-cloud/compute/build/src/v1/region_operations_client';
import type { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client';
import type { AlertPolicyServiceClient } from '@google-cloud/monitoring/build/src/v3/alert_policy_service_client';
import type { MetricServiceClient } from '@google-cloud/monitoring/build/src/v3/metric_service_client';
import type { ComputeEndpoint } from '../config';

/**
 * The one way the functions build Google Cloud clients. Each official client file is loaded on its
 * first use and only that file: the packages' indexes load every client of the API, which costs
 * seconds of cold start. Every client speaks REST (`fallback`), which is also what the local
 * emulator serves. An empty endpoint is Google's, with Application Default Credentials; an `http`
 * endpoint is a local emulator, called without credentials so that none ever travels in clear.
 */
export type GcpEndpoint = ComputeEndpoint;

/* eslint-disable @typescript-eslint/no-require-imports -- deferred loads are the point here */
const loaders = {
  instances: () =>
    (
      require('@google-cloud/compute/build/src/v1/instances_client') as {
        InstancesClient: typeof InstancesClient;
      }
    ).InstancesClient,
  zonalGroups: () =>
    (
      require('@google-cloud/compute/build/src/v1/instance_group_managers_client') as {
        InstanceGroupManagersClient: typeof InstanceGroupManagersClient;
      }
    ).InstanceGroupManagersClient,
  regionalGroups: () =>
    (
      require('@google-cloud/compute/build/src/v1/region_instance_group_managers_client') as {
        RegionInstanceGroupManagersClient: typeof RegionInstanceGroupManagersClient;
      }
    ).RegionInstanceGroupManagersClient,
  zonalAutoscalers: () =>
    (
      require('@google-cloud/compute/build/src/v1/autoscalers_client') as {
        AutoscalersClient: typeof AutoscalersClient;
      }
    ).AutoscalersClient,
  regionalAutoscalers: () =>
    (
      require('@google-cloud/compute/build/src/v1/region_autoscalers_client') as {
        RegionAutoscalersClient: typeof RegionAutoscalersClient;
      }
    ).RegionAutoscalersClient,
  zoneOperations: () =>
    (
      require('@google-cloud/compute/build/src/v1/zone_operations_client') as {
        ZoneOperationsClient: typeof ZoneOperationsClient;
      }
    ).ZoneOperationsClient,
  regionOperations: () =>
    (
      require('@google-cloud/compute/build/src/v1/region_operations_client') as {
        RegionOperationsClient: typeof RegionOperationsClient;
      }
    ).RegionOperationsClient,
  instanceTemplates: () =>
    (
      require('@google-cloud/compute/build/src/v1/instance_templates_client') as {
        InstanceTemplatesClient: typeof InstanceTemplatesClient;
      }
    ).InstanceTemplatesClient,
  metrics: () =>
    (
      require('@google-cloud/monitoring/build/src/v3/metric_service_client') as {
        MetricServiceClient: typeof MetricServiceClient;
      }
    ).MetricServiceClient,
  alertPolicies: () =>
    (
      require('@google-cloud/monitoring/build/src/v3/alert_policy_service_client') as {
        AlertPolicyServiceClient: typeof AlertPolicyServiceClient;
      }
    ).AlertPolicyServiceClient,
};

/** Constructor options for any of the clients: the endpoint, REST, and no credentials over http. */
export function clientOptions(endpoint: GcpEndpoint) {
  const options: {
    apiEndpoint?: string;
    port?: number;
    protocol?: string;
    fallback: boolean;
    authClient?: unknown;
  } = { ...endpoint, fallback: true };
  if (endpoint.protocol === 'http') {
    const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
    options.authClient = new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    });
  }
  return options;
}
/* eslint-enable @typescript-eslint/no-require-imports */

export type GcpClientName = keyof typeof loaders;
type ClientOf<K extends GcpClientName> = InstanceType<ReturnType<(typeof loaders)[K]>>;

/**
 * Lazily built clients for one endpoint. `ready` resolves to an initialised client: the clients'
 * own methods start their initialisation (credentials, for one) without handling its failure, which
 * would then reject after the function has answered; awaited here, it fails the caller's call and
 * nothing else. A client whose initialisation failed is dropped and built again next time.
 */
export interface GcpClients {
  ready<K extends GcpClientName>(name: K): Promise<ClientOf<K>>;
  close(): Promise<void>;
}

type Closable = { close(): Promise<void>; initialize(): Promise<unknown> };

export function createGcpClients(endpoint: GcpEndpoint): GcpClients {
  const built = new Map<GcpClientName, Promise<Closable>>();
  const build = async (name: GcpClientName): Promise<Closable> => {
    const Client = loaders[name]() as unknown as new (o: ReturnType<typeof clientOptions>) => Closable;
    const client = new Client(clientOptions(endpoint));
    await client.initialize();
    return client;
  };
  return {
    async ready<K extends GcpClientName>(name: K): Promise<ClientOf<K>> {
      let pending = built.get(name);
      if (!pending) {
        pending = build(name);
        built.set(name, pending);
        // A failed set-up is not kept: the next call tries again.
        pending.catch(() => built.get(name) === pending && built.delete(name));
      }
      return (await pending) as unknown as ClientOf<K>;
    },
    async close() {
      const all = [...built.values()];
      built.clear();
      const settled = await Promise.allSettled(all);
      await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
    },
  };
}
