import { googleAuthLibrary } from 'google-gax';
import { AutoscalersClient } from '@google-cloud/compute/build/src/v1/autoscalers_client';
import { InstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/instance_group_managers_client';
import { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client';
import { RegionAutoscalersClient } from '@google-cloud/compute/build/src/v1/region_autoscalers_client';
import { RegionInstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/region_instance_group_managers_client';
import { RegionOperationsClient } from '@google-cloud/compute/build/src/v1/region_operations_client';
import { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client';
import { createLogger } from '../../shared/logging';
import {
  ProcessDriver,
  startComputeEmulator,
  type RunningEmulator,
  type StartOptions,
} from '../../infra-scripts/local/compute-emulator';
import type { EmulatorOptions } from '../../infra-scripts/local/compute-emulator/emulator';

export const project = 'ilb-test';
export const zones = ['us-central1-a', 'us-central1-b'];

/** An instance: one shell process whose SIGTERM handler plays the shutdown script. */
export const instanceCommand = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2; done'];

/** The real clients, configured as the issue says: endpoint, port, http, a pass-through auth client. */
export function clients(port: number) {
  const opts = {
    apiEndpoint: '127.0.0.1',
    port,
    protocol: 'http',
    authClient: new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    }),
  };
  return {
    igms: new InstanceGroupManagersClient(opts),
    regionIgms: new RegionInstanceGroupManagersClient(opts),
    autoscalers: new AutoscalersClient(opts),
    regionAutoscalers: new RegionAutoscalersClient(opts),
    instances: new InstancesClient(opts),
    zoneOps: new ZoneOperationsClient(opts),
    regionOps: new RegionOperationsClient(opts),
    async close() {
      await Promise.all(
        [
          this.igms,
          this.regionIgms,
          this.autoscalers,
          this.regionAutoscalers,
          this.instances,
          this.zoneOps,
          this.regionOps,
        ].map((c) => c.close()),
      );
    },
  };
}

export async function startTestEmulator(
  overrides: Partial<EmulatorOptions> & Pick<StartOptions, 'alerting'> = {},
): Promise<{ emu: RunningEmulator; driver: ProcessDriver }> {
  const driver = new ProcessDriver(instanceCommand);
  const emu = await startComputeEmulator({
    project,
    zones,
    driver,
    logger: createLogger({ name: 'compute-emulator-test', level: process.env.LOG_LEVEL ?? 'warn' }),
    shutdownTimeoutMs: 3000,
    operationDelayMs: 150,
    reconcileIntervalMs: 300,
    autoscaleIntervalMs: 500,
    restartDelayMs: 300,
    ...overrides,
  });
  emu.emulator.addTemplate('backend-tmpl', {
    machineType: 'e2-small',
    labels: { role: 'backend' },
    metadata: { items: [{ key: 'role', value: 'backend' }] },
  });
  return { emu, driver };
}

/** The status of an error the real client threw, and the reasons in Google's error body. */
export function googleError(err: unknown): { code: unknown; reasons: string[] } {
  const e = err as { code?: unknown; message?: string };
  let reasons: string[] = [];
  try {
    const body = JSON.parse(e.message ?? '') as { error?: { errors?: { reason?: string }[] } };
    reasons = (body.error?.errors ?? []).map((x) => x.reason ?? '');
  } catch {
    reasons = [];
  }
  return { code: e.code, reasons };
}

/** Polls `check` until it returns true, every 100 ms, for at most `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
