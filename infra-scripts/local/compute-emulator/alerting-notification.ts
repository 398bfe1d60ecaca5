import type { Comparison, Incident, Policy } from './alerting-schemas';
import { policyView } from './alerting-views';

export interface NotificationContext {
  project: string;
  projectNumber: string;
  /** The display name of a monitored resource (a VM's name), when the emulator knows it. */
  resourceName?: (resource: { type: string; labels: Record<string, string> }) => string | undefined;
}

/** The notification as Monitoring's Pub/Sub channel sends it (schema version 1.2). */
export function notification(p: Policy, i: Incident, o: NotificationContext) {
  const cond = p.input.conditions[0]!;
  const c = cond.conditionThreshold;
  const project = o.project;
  const vm = o.resourceName?.(i.resource);
  const metricName = i.metric.type.split('/').slice(-2).join('/');
  const value = i.observed.toFixed(3);
  const threshold = c.thresholdValue.toFixed(3);
  const resourceName = vm ? `${project} ${vm}` : (i.resource.labels.instance_id ?? i.resource.type);
  const summary =
    i.state === 'open'
      ? `${metricName} for ${resourceName} with metric labels ${JSON.stringify(i.metric.labels)} is ${comparisonWords(c.comparison as Comparison)} the threshold of ${threshold} with a value of ${value}.`
      : i.closeReason === 'policy-deleted'
        ? `Incident cancelled because the alert policy was deleted or changed.`
        : i.closeReason === 'auto-close'
          ? `${metricName} for ${resourceName} has had no data for the auto-close duration; the incident was closed.`
          : `${metricName} for ${resourceName} returned to normal with a value of ${value}.`;
  return {
    incident: {
      incident_id: i.id,
      scoping_project_id: project,
      scoping_project_number: Number(o.projectNumber),
      url: `https://console.cloud.google.com/monitoring/alerting/incidents/${i.id}?project=${project}`,
      started_at: Math.floor(i.startedAt / 1000),
      ended_at: i.endedAt === undefined ? null : Math.floor(i.endedAt / 1000),
      state: i.state,
      summary,
      observed_value: value,
      threshold_value: String(c.thresholdValue),
      resource: i.resource,
      resource_type_display_name: i.resource.type === 'gce_instance' ? 'VM Instance' : i.resource.type,
      resource_id: i.resource.labels.instance_id ?? '',
      resource_display_name: vm ?? i.resource.labels.instance_id ?? '',
      resource_name: resourceName,
      metric: { type: i.metric.type, displayName: metricName, labels: i.metric.labels },
      metadata: { system_labels: {}, user_labels: {} },
      policy_name: p.input.displayName,
      policy_user_labels: p.input.userLabels ?? {},
      documentation: {
        content: p.input.documentation?.content ?? '',
        mime_type: p.input.documentation?.mimeType ?? 'text/markdown',
        subject: p.input.documentation?.subject ?? '',
      },
      condition: {
        name: p.conditionName,
        displayName: cond.displayName,
        conditionThreshold: policyView(p).conditions[0]!.conditionThreshold,
      },
      condition_name: cond.displayName,
      severity:
        p.input.severity && p.input.severity !== 'SEVERITY_UNSPECIFIED'
          ? p.input.severity.toLowerCase()
          : 'no severity',
    },
    version: '1.2',
  };
}

function comparisonWords(c: Comparison): string {
  return {
    COMPARISON_GT: 'above',
    COMPARISON_GE: 'at or above',
    COMPARISON_LT: 'below',
    COMPARISON_LE: 'at or below',
    COMPARISON_EQ: 'equal to',
    COMPARISON_NE: 'not equal to',
  }[c];
}
