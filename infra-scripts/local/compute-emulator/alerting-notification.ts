import type { Comparison, Incident, Policy } from './alerting-schemas';
import { conditionView } from './alerting-views';

export interface NotificationContext {
  project: string;
  projectNumber: string;
  /** The display name of a monitored resource (a VM's name), when the emulator knows it. */
  resourceName?: (resource: { type: string; labels: Record<string, string> }) => string | undefined;
}

/**
 * What Monitoring puts in `observed_value` (and so in the summary's "returned to normal with a
 * value of …") when an incident closes because its condition was deleted or modified.
 */
export const cancelledText =
  'Incident cancelled because the alert policy condition was deleted or modified while incident was active.';

/**
 * The notification as Monitoring's Pub/Sub channel sends it (schema version 1.2, "Create and
 * manage notification channels", https://cloud.google.com/monitoring/support/notification-options,
 * its Pub/Sub schema). Details as Monitoring's own Pub/Sub notifications carry them: `url` is
 * `/monitoring/alerting/alerts/<id>?channelType=cloud-pubsub&project=P`, `severity` the policy's
 * level capitalised ("Error", AlertPolicy.Severity ERROR), metric labels read `{k=v, k=v}`, and a
 * cancelled incident carries `cancelledText` as its observed value.
 */
export function notification(p: Policy, i: Incident, o: NotificationContext) {
  const cond = p.input.conditions[0]!;
  const c = cond.conditionThreshold;
  const project = o.project;
  const vm = o.resourceName?.(i.resource);
  const metricName = i.metric.type.split('/').slice(-2).join('/');
  // An absence has no value to report while open, nor a threshold.
  const value =
    i.closeReason === 'cancelled' ? cancelledText : c || i.state === 'closed' ? i.observed.toFixed(3) : '';
  const threshold = c ? c.thresholdValue.toFixed(3) : '';
  const resourceName = vm ? `${project} ${vm}` : (i.resource.labels.instance_id ?? i.resource.type);
  const labels = Object.entries(i.metric.labels);
  const subject = `${metricName} for ${resourceName}${labels.length ? ` with metric labels {${labels.map(([k, v]) => `${k}=${v}`).join(', ')}}` : ''}`;
  const opened = c
    ? `${subject} is ${comparisonWords(c.comparison as Comparison)} the threshold of ${threshold} with a value of ${value}.`
    : `${subject} has had no data for ${cond.conditionAbsent!.duration / 60_000} minutes.`;
  const summary =
    i.state === 'open'
      ? opened
      : i.closeReason === 'auto-close'
        ? `${subject} has had no data for the auto-close duration; the incident was closed.`
        : `${subject} returned to normal with a value of ${value}.`;
  return {
    incident: {
      incident_id: i.id,
      scoping_project_id: project,
      scoping_project_number: Number(o.projectNumber),
      url: `https://console.cloud.google.com/monitoring/alerting/alerts/${i.id}?channelType=cloud-pubsub&project=${project}`,
      started_at: Math.floor(i.startedAt / 1000),
      ended_at: i.endedAt === undefined ? null : Math.floor(i.endedAt / 1000),
      state: i.state,
      summary,
      observed_value: value,
      threshold_value: c ? String(c.thresholdValue) : '',
      resource: i.resource,
      resource_type_display_name: i.resource.type === 'gce_instance' ? 'VM Instance' : i.resource.type,
      resource_id: i.resource.labels.instance_id ?? '',
      resource_display_name: vm ?? i.resource.labels.instance_id ?? '',
      resource_name: resourceName,
      metric: { type: i.metric.type, displayName: metricName, labels: i.metric.labels },
      metadata: { system_labels: i.metadata.system_labels, user_labels: i.metadata.user_labels },
      policy_name: p.input.displayName,
      policy_user_labels: p.input.userLabels ?? {},
      documentation: {
        content: p.input.documentation?.content ?? '',
        mime_type: p.input.documentation?.mimeType ?? 'text/markdown',
        subject: p.input.documentation?.subject ?? '',
      },
      condition: conditionView(p),
      condition_name: cond.displayName,
      severity:
        p.input.severity && p.input.severity !== 'SEVERITY_UNSPECIFIED'
          ? `${p.input.severity[0]}${p.input.severity.slice(1).toLowerCase()}`
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
