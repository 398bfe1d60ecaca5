/**
 * scalingAlerts' setup in the sandbox: the Monitoring alert policy and Pub/Sub channel created at
 * start-up (over the emulator's REST API, as `gcloud alpha monitoring policies create` would) and
 * the function's rule file. The sandbox, the functions host and the alert scenarios read it; it
 * imports none of them.
 */
import { groups, metrics, sandboxProject, sandboxRegion } from './topology';

export const alertPolicyName = 'haproxy-high-request-rate';
/** Per HAProxy instance, requests/s averaged over a minute: low, so modest load crosses it. */
export const alertThreshold = 5;
export const schedulePrefix = 'ilb-incident-';
/** Floors last 300 s, GCE's shortest schedule; open incidents are renotified (and renewed) every 120 s. */
export const leaseSec = 300;
const renotifySec = 120;

/** scalingAlerts' rule file for the sandbox: the topology's autoscalers, the default tier/action rules. */
export function sandboxScalingRules() {
  const tier = (role: 'backend' | 'haproxy') => {
    const a = groups.find((g) => g.role === role)!.autoscaler!;
    return {
      autoscalers: [{ project: sandboxProject, region: sandboxRegion, name: `${role}-autoscaler` }],
      floor: a.min,
      ceiling: a.max,
      maxStep: 2,
      cooldownSec: 0,
      maxChangesPerHour: 60,
      lease: { defaultSec: leaseSec, maxSec: leaseSec },
    };
  };
  return {
    version: 1,
    ownership: { namePrefixes: ['backend-autoscaler', 'haproxy-autoscaler'] },
    schedulePrefix,
    tiers: { backend: tier('backend'), haproxy: tier('haproxy') },
    rules: [],
    useDefaultRules: true,
  };
}

/** The function's settings in the sandbox (on top of the common ones the functions host sets). */
export function scalingAlertsEnv(): Record<string, string> {
  return {
    SCALING_RULES_JSON: JSON.stringify(sandboxScalingRules()),
    SCALING_ALERTS_OPERATION_TIMEOUT_MS: '30000',
  };
}

async function call(url: string, body: unknown): Promise<{ name: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { name: string };
}

/**
 * The channel (Pub/Sub topic `scaling-alerts`) and the policy: HAProxy request rate per instance,
 * 60 s mean above the threshold, labels tier=haproxy, action=raise-min. The policy starts disabled,
 * so that the load of the other scenarios does not move the haproxy floor; the alert scenarios
 * enable it while they run (`alertPolicies.patch` with `updateMask=enabled`).
 */
export async function setupSandboxAlerting(computeUrl: string): Promise<{ channel: string; policy: string }> {
  const base = `${computeUrl}/v3/projects/${sandboxProject}`;
  const channel = await call(`${base}/notificationChannels`, {
    type: 'pubsub',
    displayName: 'scalingAlerts',
    labels: { topic: `projects/${sandboxProject}/topics/scaling-alerts` },
  });
  const policy = await call(`${base}/alertPolicies`, {
    displayName: alertPolicyName,
    enabled: false,
    userLabels: { tier: 'haproxy', action: 'raise-min' },
    documentation: { content: 'Raise the haproxy tier floor while load is high.', mimeType: 'text/markdown' },
    combiner: 'OR',
    conditions: [
      {
        displayName: `HAProxy request rate per instance above ${alertThreshold}/s`,
        conditionThreshold: {
          filter: `metric.type="${metrics.haproxyRate}" resource.type="gce_instance"`,
          comparison: 'COMPARISON_GT',
          thresholdValue: alertThreshold,
          duration: '0s',
          aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN' }],
        },
      },
    ],
    notificationChannels: [channel.name],
    alertStrategy: {
      autoClose: '1800s',
      notificationChannelStrategy: [
        { notificationChannelNames: [channel.name], renotifyInterval: `${renotifySec}s` },
      ],
    },
  });
  return { channel: channel.name, policy: policy.name };
}
