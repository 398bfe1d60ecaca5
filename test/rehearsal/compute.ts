/**
 * The Compute Engine emulator mounted on the stand-in as the `compute` module, in process: gcloud's
 * `api_endpoint_overrides/compute` points at `/compute/`, so `/compute/v1/projects/…` reaches the
 * emulator's own routes; a request no route serves is unserved in the journal. Its instances run
 * nothing (RecordingDriver).
 */
import { createLogger } from '../../shared/logging';
import { computeRoutes } from '../../infra-scripts/local/compute-emulator/compute-routes';
import { ComputeEmulator } from '../../infra-scripts/local/compute-emulator/emulator';
import { ApiError } from '../../infra-scripts/local/compute-emulator/errors';
import { RecordingDriver } from '../../infra-scripts/local/compute-emulator/recording-driver';
import { Router } from '../../infra-scripts/local/compute-emulator/router';
import type { ApiModule, ApiRequest, ApiResponse, ProjectFacts } from './contract';

export interface RehearsalCompute {
  module: ApiModule;
  /** The next request whose method and path match is refused with Compute's 400, once. */
  failOnce(method: string, path: RegExp): void;
  emulator: ComputeEmulator;
  driver: RecordingDriver;
  stop(): Promise<void>;
}

/** Packer's images, as `build-images.sh` leaves them: one per role, in its family. */
export const imageFamilies = ['ilb-consul', 'ilb-haproxy', 'ilb-backend', 'ilb-frontend'];

export function startCompute(facts: ProjectFacts, zones: string[]): RehearsalCompute {
  const driver = new RecordingDriver();
  const emulator = new ComputeEmulator({
    project: facts.project,
    projectNumber: facts.projectNumber,
    zones,
    driver,
    logger: createLogger({ name: 'rehearsal-compute', level: process.env.LOG_LEVEL ?? 'warn' }),
    operationDelayMs: 20,
    reconcileIntervalMs: 200,
    autoscaleIntervalMs: 60_000,
    shutdownTimeoutMs: 100,
  });
  for (const family of imageFamilies) emulator.deploy.network.seedImage(`${family}-v1`, family);
  const router = new Router(computeRoutes(emulator));
  emulator.start();

  const faults: { method: string; path: RegExp }[] = [];
  const handle = async (req: ApiRequest): Promise<ApiResponse | undefined> => {
    const hit = router.match(req.method, `/compute${req.path}`);
    if (!hit) return undefined;
    const fault = faults.findIndex((f) => f.method === req.method && f.path.test(req.path));
    if (fault >= 0) {
      faults.splice(fault, 1);
      return { status: 400, body: new ApiError(400, 'invalid', 'Injected by the rehearsal.').toJSON() };
    }
    try {
      const body = await hit.route.handler({
        method: req.method,
        params: hit.params,
        query: Object.fromEntries(req.query),
        body: req.body,
        caller: { userAgent: 'google-cloud-sdk (rehearsal)' },
      });
      return { status: 200, body };
    } catch (err) {
      if (err instanceof ApiError) return { status: err.code, body: err.toJSON() };
      throw err;
    }
  };

  const module: ApiModule = {
    name: 'compute',
    handle,
    inventory: () => [
      ...emulator.deploy.network.inventory(),
      ...emulator.listTemplates().map((t) => ({ kind: 'compute.instanceTemplates', name: t.name })),
      ...emulator.allIgms().map((g) => ({ kind: 'compute.instanceGroupManagers', name: g.name })),
      ...emulator.allAutoscalers().map((a) => ({ kind: 'compute.autoscalers', name: a.name })),
      ...emulator.allInstances().map((i) => ({ kind: 'compute.instances', name: `${i.zone}/${i.name}` })),
      ...emulator.deploy.commonMetadataItems().map((m) => ({ kind: 'compute.projectMetadata', name: m.key })),
    ],
  };
  return {
    module,
    failOnce: (method, path) => faults.push({ method, path }),
    emulator,
    driver,
    stop: () => emulator.stop(),
  };
}
