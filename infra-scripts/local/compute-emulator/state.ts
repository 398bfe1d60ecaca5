/** The emulator's resources, how they are keyed and linked, and how the API prints them. */
export const apiBase = 'https://www.googleapis.com/compute/v1';

export type ScopeKind = 'zones' | 'regions';
export interface Scope {
  kind: ScopeKind;
  name: string;
}

export const scopePath = (project: string, scope: Scope): string =>
  `projects/${project}/${scope.kind}/${scope.name}`;
export const regionOfZone = (zone: string): string => zone.replace(/-[a-z]$/, '');

export type InstanceStatus = 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED';
export type SlotAction = 'NONE' | 'CREATING' | 'DELETING' | 'RECREATING' | 'ABANDONING';

export interface Template {
  id: string;
  name: string;
  creationTimestamp: string;
  description?: string;
  properties: TemplateProperties;
}

export interface TemplateProperties {
  machineType?: string;
  description?: string;
  labels?: Record<string, string>;
  tags?: { items?: string[] };
  metadata?: { items?: { key: string; value?: string }[] };
}

export interface Instance {
  id: string;
  name: string;
  zone: string;
  status: InstanceStatus;
  creationTimestamp: string;
  networkIP: string;
  /** Metadata items in template order, plus the ones a MIG adds. */
  metadata: { key: string; value: string }[];
  labels: Record<string, string>;
  tags: string[];
  machineType: string;
  templateName?: string;
  /** Key of the managing group (see `igmKey`), absent once abandoned or for unmanaged instances. */
  igm?: string;
  hung: boolean;
  /** An emulator-side transition (boot, delete, restart) is in flight; MIGs leave the instance alone. */
  busy: boolean;
}

/** A MIG's per-name slot: the group keeps a name even while its instance is gone or being replaced. */
export interface Slot {
  name: string;
  zone: string;
  instanceId?: string;
  action: SlotAction;
  want: 'keep' | 'delete' | 'recreate' | 'abandon';
}

export interface Igm {
  id: string;
  name: string;
  scope: Scope;
  description: string;
  baseInstanceName: string;
  instanceTemplate: string;
  targetSize: number;
  fingerprint: string;
  creationTimestamp: string;
  zones: string[];
  slots: Slot[];
  autoscaler?: string;
  /** How `listManagedInstances` answers; unset: PAGELESS, Google's default. */
  listManagedInstancesResults?: ListManagedInstancesResults;
}

/**
 * InstanceGroupManager.listManagedInstancesResults: PAGELESS (the default) ignores `maxResults` and
 * `pageToken` and returns every instance at once; PAGINATED respects them
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers).
 */
export const listManagedInstancesResults = ['PAGELESS', 'PAGINATED'] as const;
export type ListManagedInstancesResults = (typeof listManagedInstancesResults)[number];

export type AutoscalerMode = 'ON' | 'OFF' | 'ONLY_SCALE_OUT' | 'ONLY_UP';

export interface FixedOrPercent {
  fixed?: number;
  percent?: number;
}

export interface CustomMetricUtilization {
  metric: string;
  filter?: string;
  utilizationTarget?: number;
  utilizationTargetType?: 'GAUGE' | 'DELTA_PER_SECOND' | 'DELTA_PER_MINUTE';
  singleInstanceAssignment?: number;
}

export interface ScalingSchedule {
  minRequiredReplicas: number;
  /** Start times as a cron expression (cron.ts), read in `timeZone` (UTC if none). */
  schedule: string;
  timeZone?: string;
  durationSec: number;
  disabled?: boolean;
  description?: string;
}

export interface AutoscalingPolicy {
  minNumReplicas: number;
  maxNumReplicas: number;
  coolDownPeriodSec: number;
  mode: AutoscalerMode;
  cpuUtilization?: { utilizationTarget: number; predictiveMethod?: 'NONE' | 'OPTIMIZE_AVAILABILITY' };
  customMetricUtilizations: CustomMetricUtilization[];
  /** Kept as given; the emulator has no load balancer to measure, so it is no signal here. */
  loadBalancingUtilization?: { utilizationTarget?: number };
  scaleInControl?: { maxScaledInReplicas?: FixedOrPercent; timeWindowSec?: number };
  scalingSchedules?: Record<string, ScalingSchedule>;
  /** GCE's scale-in stabilization period (default 600 s); the emulator's `stabilizationSec` if unset. */
  stabilizationPeriodSec?: number;
}

export interface StatusDetail {
  message: string;
  type: string;
}

export interface Autoscaler {
  id: string;
  name: string;
  scope: Scope;
  description: string;
  target: string;
  policy: AutoscalingPolicy;
  creationTimestamp: string;
  recommendedSize?: number;
  statusDetails: StatusDetail[];
  /** Per scaling schedule, as the last autoscaler run saw it. */
  scheduleStatus?: Record<string, { state: string; lastStartTime?: string }>;
  /** When each scaling schedule was created or last changed (ms). */
  scheduleWrittenAt?: Record<string, number>;
  /** Name of a modifying operation still running; a second modification meanwhile is refused. */
  pendingOperation?: string;
}

export interface OperationError {
  code: string;
  message: string;
}

export interface Operation {
  id: string;
  name: string;
  scope: Scope;
  operationType: string;
  targetLink: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress: number;
  user: string;
  insertTime: string;
  startTime: string;
  endTime?: string;
  errors?: OperationError[];
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
  description?: string;
}

export const instanceKey = (zone: string, name: string): string => `${zone}/${name}`;
export const igmKey = (scope: Scope, name: string): string => `${scope.kind}/${scope.name}/${name}`;

export const links = {
  zone: (project: string, zone: string) => `${apiBase}/projects/${project}/zones/${zone}`,
  region: (project: string, region: string) => `${apiBase}/projects/${project}/regions/${region}`,
  instance: (project: string, zone: string, name: string) =>
    `${apiBase}/projects/${project}/zones/${zone}/instances/${name}`,
  template: (project: string, name: string) =>
    `${apiBase}/projects/${project}/global/instanceTemplates/${name}`,
  igm: (project: string, scope: Scope, name: string) =>
    `${apiBase}/${scopePath(project, scope)}/instanceGroupManagers/${name}`,
  instanceGroup: (project: string, scope: Scope, name: string) =>
    `${apiBase}/${scopePath(project, scope)}/instanceGroups/${name}`,
  autoscaler: (project: string, scope: Scope, name: string) =>
    `${apiBase}/${scopePath(project, scope)}/autoscalers/${name}`,
  operation: (project: string, scope: Scope, name: string) =>
    `${apiBase}/${scopePath(project, scope)}/operations/${name}`,
};

/** The last path segment of a resource URL or partial path, i.e. the resource's name. */
export const lastSegment = (url: string): string => url.slice(url.lastIndexOf('/') + 1);
