import type { GcpClients } from '../gcp/client';
import { createMetricsWriter, customMetric, type MetricPoint, type MetricsWriter } from '../gcp/monitoring';
import type { ApiCalls } from './calls';
import { byKey, type SweepPlan, type SweepAction } from './report';

/** The sweep's metrics writer: the one writer, counting its requests in `calls`. */
export const createSweepMetrics = (clients: GcpClients, calls: ApiCalls): MetricsWriter =>
  createMetricsWriter(clients, { onRequest: () => calls.monitoring++ });

/**
 * The sweep's metric points: healthy members per role and zone, stale nodes, orphans, actions by
 * type, refused actions by reason, repairs no event had made, and the sweep's duration (measured by
 * the caller).
 */
export function metricPoints(plan: SweepPlan, durationMs: number): MetricPoint[] {
  const { report } = plan;
  const points: MetricPoint[] = report.healthyMembers.map((h) => ({
    type: customMetric('healthy_members'),
    labels: { role: h.role, zone: h.zone },
    value: h.healthy,
  }));
  points.push({ type: customMetric('stale_nodes'), labels: {}, value: report.stale.length });
  points.push({ type: customMetric('orphans'), labels: {}, value: report.orphans.length });
  const actionTypes: SweepAction['type'][] = [
    'deregister',
    'recreate',
    'delete-drain',
    'delete-record',
    'purge-ledger',
    'remove-unproven',
  ];
  for (const type of actionTypes) {
    const value = plan.actions.filter((a) => a.type === type).length;
    points.push({ type: customMetric('actions'), labels: { action: type }, value });
  }
  const reasons = new Map<string, number>();
  for (const r of report.refused) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  for (const [reason, value] of [...reasons.entries()].sort(byKey(([k]) => k))) {
    points.push({ type: customMetric('refused_actions'), labels: { reason }, value });
  }
  points.push(...repairedWithoutEvent(plan.actions));
  const identity = new Map<string, number>();
  for (const f of report.identity) identity.set(f.reason, (identity.get(f.reason) ?? 0) + 1);
  for (const [reason, value] of [...identity.entries()].sort(byKey(([k]) => k))) {
    points.push({ type: customMetric('identity_refused'), labels: { reason }, value });
  }
  points.push({ type: customMetric('sweep_duration_ms'), labels: {}, value: durationMs });
  return points;
}

/**
 * `sweep_repaired_without_event{kind}`: what the sweep repaired that no event had, i.e. evidence
 * that events were missed. A node the sweep deregisters (`stale`) outlived its instance for the
 * sweeps of the hysteresis, where instanceEvents removes it within seconds of the audit entry; an
 * instance it recreates (`broken`, for a dead or missing node) is one no event touched, since a
 * member being drained by an event is never counted broken (plan.ts). Zero is written too, so the
 * series is continuous.
 */
function repairedWithoutEvent(done: readonly SweepAction[]): MetricPoint[] {
  const kinds: Array<[string, SweepAction['type']]> = [
    ['stale', 'deregister'],
    ['broken', 'recreate'],
  ];
  return kinds.map(([kind, type]) => ({
    type: customMetric('sweep_repaired_without_event'),
    labels: { kind },
    value: done.filter((a) => a.type === type).length,
  }));
}
