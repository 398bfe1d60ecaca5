import { topicFunctions } from '../../../functions/catalog';
import type { ResolvedConfig } from '../config';
import { dashboardConfig, dashboardName } from '../dashboard';
import { heartbeatPolicy } from '../heartbeat';
import type { Step } from '../plan';
import type { Kit, Part } from './kit';
import { APP_LABEL } from './names';
import { topicPublisher } from './pubsub';

/**
 * The deployment's Monitoring: with scalingAlerts, a notification channel to its topic (the
 * Monitoring agent may publish there) and a CPU alert policy per autoscaled tier, notifying on open
 * and close; with healthSweep, the alert when it stops completing sweeps; always, the dashboard.
 */
export function monitoringSteps(k: Kit): Part {
  const { c } = k;
  const scaling = c.functions.includes('scalingAlerts') ? scalingAlertSteps(k) : { steps: [] };
  const heartbeat = c.functions.includes('healthSweep')
    ? [policyStep(k, 'alert-policy-heartbeat', heartbeatPolicy(c), 'notifies the operator channels')]
    : [];
  return { steps: [...scaling.steps, ...heartbeat, dashboardStep(k)], lookups: scaling.lookups ?? {} };
}

function scalingAlertSteps(k: Kit): Part {
  const { c, n, P, labels, marker } = k;
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
      policyStep(k, 'alert-policy-backend', cpuAlertPolicy(c, 'backend'), 'notifies on open and close'),
      policyStep(k, 'alert-policy-haproxy', cpuAlertPolicy(c, 'haproxy'), 'notifies on open and close'),
    ],
    lookups: { channel },
  };
}

/** An alert policy, created once: found by its display name. */
function policyStep(k: Kit, id: string, policy: { displayName: string }, note: string): Step {
  const { P } = k;
  return k.step(
    id,
    `alert policy "${policy.displayName}" (${note})`,
    {
      args: [
        'alpha',
        'monitoring',
        'policies',
        'list',
        `--filter=displayName="${policy.displayName}"`,
        ...P,
        '--format=value(name)',
      ],
      expect: 'nonEmpty',
    },
    k.cmd('alpha', 'monitoring', 'policies', 'create', `--policy=${JSON.stringify(policy)}`),
  );
}

/**
 * The dashboard, created once (found by its display name and deployment label). Its JSON is read
 * from stdin: `--config-from-file` reads "-" as stdin (gcloud's FileContents argument type).
 */
function dashboardStep(k: Kit): Step {
  const { c, P } = k;
  const name = dashboardName(c);
  const json = `${JSON.stringify(dashboardConfig(c), null, 2)}\n`;
  return k.step(
    'dashboard',
    `dashboard "${name}"`,
    {
      args: [
        'monitoring',
        'dashboards',
        'list',
        `--filter=displayName="${name}" AND labels.deployment="${c.deployment}"`,
        ...P,
        '--format=value(name)',
      ],
      expect: 'nonEmpty',
    },
    {
      ...k.cmd('monitoring', 'dashboards', 'create', '--config-from-file=-'),
      stdin: { script: json, lines: json.split('\n').length - 1 },
    },
  );
}

/**
 * The tier's mean CPU above its autoscaler's target (+0.2, at most 1) for five minutes; notifies
 * `@{channel}` (the deploy's lookup; the sandbox puts its own channel there).
 */
export function cpuAlertPolicy(c: ResolvedConfig, role: 'backend' | 'haproxy') {
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
  return policy;
}
