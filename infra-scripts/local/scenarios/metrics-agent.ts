/**
 * Stands in for the Ops Agent and GCE's own metrics: every 5 s reads each HAProxy's stats and writes
 * per-instance request rates (haproxy frontend rate; backend server rates summed over HAProxies) as
 * custom metrics, and each instance's CPU utilization from its processes, which the emulator's
 * autoscalers and Monitoring read.
 */
import type { Logger } from '../../../shared/logging';
import { readRuntime } from '../../../services/haproxy-sync/runtime';
import { parseStatsCsv } from '../../../services/haproxy-sync/stats';
import type { RunningEmulator } from '../compute-emulator';
import type { LauncherDriver } from '../compute-emulator/launcher-driver';
import type { Instance } from '../compute-emulator/state';
import { metrics, sandboxProject } from './topology';

/** https://cloud.google.com/monitoring/api/metrics_gcp_c (compute): GAUGE DOUBLE, 0..1. */
export const cpuUtilization = 'compute.googleapis.com/instance/cpu/utilization';

export interface MetricsAgent {
  stop(): void;
}

export function startMetricsAgent(
  compute: RunningEmulator,
  driver: LauncherDriver,
  logger: Logger,
  intervalMs = 5000,
): MetricsAgent {
  const emu = compute.emulator;
  const tick = async () => {
    const instances = emu.allInstances().filter((i) => i.status === 'RUNNING');
    const haproxies = instances.filter((i) => i.labels.role === 'haproxy');
    const backendRate = new Map<string, number>();
    const series: unknown[] = [];
    const now = new Date().toISOString();
    const point = (value: number) => [{ interval: { endTime: now }, value: { doubleValue: value } }];
    const resource = (i: Instance) => ({
      type: 'gce_instance',
      labels: { instance_id: i.id, zone: i.zone, project_id: sandboxProject },
    });
    for (const h of haproxies) {
      const res = await fetch(`http://${h.networkIP}:8404/stats;csv`, {
        signal: AbortSignal.timeout(2000),
      }).catch(() => undefined);
      if (!res?.ok) continue;
      const { rows } = parseStatsCsv(await res.text());
      const front = rows.find((r) => r.pxname === 'internal' && r.svname === 'FRONTEND');
      series.push({
        metric: { type: metrics.haproxyRate },
        resource: resource(h),
        points: point(Number(front?.req_rate ?? front?.rate ?? 0)),
      });
      // The stats CSV has no server addresses; the runtime API maps each slot to the backend it holds.
      const root = driver.rootOf(h.id);
      if (!root) continue;
      for (const slot of await readRuntime(`${root}/run/haproxy/admin.sock`, 'backends')) {
        const rate = Number(rows.find((r) => r.pxname === 'backends' && r.svname === slot.name)?.rate || 0);
        backendRate.set(slot.addr, (backendRate.get(slot.addr) ?? 0) + rate);
      }
    }
    for (const be of instances.filter((i) => i.labels.role === 'backend')) {
      series.push({
        metric: { type: metrics.backendRate },
        resource: resource(be),
        points: point(backendRate.get(be.networkIP) ?? 0),
      });
    }
    // What GCE writes for every VM: the fraction of its CPU in use; a sandbox instance (its processes)
    // counts as one vCPU. The deploy's CPU alert policies read it.
    const cpu: unknown[] = [];
    for (const i of instances) {
      const cores = await driver.cpu(i.id);
      if (cores === undefined) continue;
      cpu.push({
        metric: { type: cpuUtilization },
        resource: resource(i),
        points: point(Math.min(1, cores)),
      });
    }
    if (series.length) compute.monitoring.create({ timeSeries: series });
    if (cpu.length) compute.monitoring.recordSystem({ timeSeries: cpu });
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch((err: unknown) => logger.warn({ err }, 'metrics agent tick failed'))
      .finally(() => (busy = false));
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
