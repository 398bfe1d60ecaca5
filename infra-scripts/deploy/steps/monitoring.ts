import { topicFunctions } from '../../../functions/catalog';
import type { Step } from '../plan';
import type { Kit, Part } from './kit';
import { APP_LABEL } from './names';
import { topicPublisher } from './pubsub';

/**
 * With scalingAlerts: a notification channel to its topic (the Monitoring agent may publish there)
 * and a CPU alert policy per autoscaled tier, notifying on open and close.
 */
export function monitoringSteps(k: Kit): Part {
  const { c, n, P, labels, marker } = k;
  if (!c.functions.includes('scalingAlerts')) return { steps: [] };
  const topic = topicFunctions.scalingAlerts.trigger.topic;
  const channel = [
    'beta',
    'monitoring',
    'channels',
    'list',
    `--filter=displayName="${n.channel}"`,
    ...P,
    '--format=value(name)',
  ];
  return {
    steps: [
      k.step(
        'channel-scaling-alerts',
        `notification channel "${n.channel}" → ${topic}`,
        { args: channel, expect: 'nonEmpty' },
        k.cmd(
          'beta',
          'monitoring',
          'channels',
          'create',
          `--display-name=${n.channel}`,
          '--type=pubsub',
          `--channel-labels=topic=projects/${c.project}/topics/${topic}`,
          `--user-labels=${labels}`,
          `--description=${marker}`,
        ),
      ),
      // Without this grant Monitoring drops the notifications silently.
      topicPublisher(
        k,
        'monitoring-agent-publishes',
        topic,
        'serviceAccount:service-@{projectNumber}@gcp-sa-monitoring-notification.iam.gserviceaccount.com',
        'the Monitoring notification service agent',
      ),
      alertPolicy(k, 'backend'),
      alertPolicy(k, 'haproxy'),
    ],
    lookups: { channel },
  };
}

/** The tier's mean CPU above its autoscaler's target (+0.2, at most 1) for five minutes. */
function alertPolicy(k: Kit, role: 'backend' | 'haproxy'): Step {
  const { c, P } = k;
  const displayName = `${c.deployment} ${role} CPU high`;
  const policy = {
    displayName,
    combiner: 'OR',
    conditions: [
      {
        displayName: `${role} mean CPU above ${c[role].targetCpu + 0.2 > 1 ? 1 : c[role].targetCpu + 0.2}`,
        conditionThreshold: {
          filter: `resource.type = "gce_instance" AND metric.type = "compute.googleapis.com/instance/cpu/utilization" AND metadata.user_labels."deployment" = "${c.deployment}" AND metadata.user_labels."role" = "${role}"`,
          aggregations: [
            { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_MEAN' },
          ],
          comparison: 'COMPARISON_GT',
          thresholdValue: Math.min(1, c[role].targetCpu + 0.2),
          duration: '300s',
        },
      },
    ],
    // scalingAlerts acts on open and undoes on close: both must be notified.
    alertStrategy: { notificationPrompts: ['OPENED', 'CLOSED'], autoClose: '1800s' },
    notificationChannels: ['@{channel}'],
    userLabels: { app: APP_LABEL, deployment: c.deployment },
  };
  return k.step(
    `alert-policy-${role}`,
    `alert policy "${displayName}" (notifies on open and close)`,
    {
      args: [
        'alpha',
        'monitoring',
        'policies',
        'list',
        `--filter=displayName="${displayName}"`,
        ...P,
        '--format=value(name)',
      ],
      expect: 'nonEmpty',
    },
    k.cmd('alpha', 'monitoring', 'policies', 'create', `--policy=${JSON.stringify(policy)}`),
  );
}
