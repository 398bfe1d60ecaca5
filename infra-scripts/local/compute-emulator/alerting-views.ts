import { type Channel, type Condition, type Policy, seconds } from './alerting-schemas';

/** The REST JSON of a stored alert policy and notification channel, with the defaults filled in. */

type Aggregations = NonNullable<Condition['conditionThreshold']>['aggregations'];

const aggregationsView = (aggregations: Aggregations) => {
  const agg = aggregations?.[0];
  if (!agg) return {};
  return {
    aggregations: [
      {
        alignmentPeriod: seconds(agg.alignmentPeriod ?? 60_000),
        perSeriesAligner: agg.perSeriesAligner ?? 'ALIGN_MEAN',
        ...(agg.crossSeriesReducer && agg.crossSeriesReducer !== 'REDUCE_NONE'
          ? { crossSeriesReducer: agg.crossSeriesReducer }
          : {}),
        ...(agg.groupByFields?.length ? { groupByFields: agg.groupByFields } : {}),
      },
    ],
  };
};

/** The REST JSON of the policy's one condition: a threshold or an absence. */
export function conditionView(p: Policy) {
  const cond = p.input.conditions[0]!;
  const base = { name: p.conditionName, displayName: cond.displayName };
  const t = cond.conditionThreshold;
  if (t)
    return {
      ...base,
      conditionThreshold: {
        filter: t.filter,
        comparison: t.comparison,
        thresholdValue: t.thresholdValue,
        duration: seconds(t.duration),
        ...aggregationsView(t.aggregations),
        trigger: { count: 1 },
      },
    };
  const a = cond.conditionAbsent!;
  return {
    ...base,
    conditionAbsent: {
      filter: a.filter,
      duration: seconds(a.duration),
      ...aggregationsView(a.aggregations),
      trigger: { count: 1 },
    },
  };
}

export function policyView(p: Policy) {
  const strategy = p.input.alertStrategy;
  return {
    name: p.name,
    displayName: p.input.displayName,
    ...(p.input.documentation ? { documentation: p.input.documentation } : {}),
    userLabels: p.input.userLabels ?? {},
    conditions: [conditionView(p)],
    combiner: typeof p.input.combiner === 'string' ? p.input.combiner : 'OR',
    enabled: p.input.enabled ?? true,
    notificationChannels: p.input.notificationChannels ?? [],
    ...(strategy
      ? {
          alertStrategy: {
            ...(strategy.autoClose !== undefined ? { autoClose: seconds(strategy.autoClose) } : {}),
            ...(strategy.notificationPrompts ? { notificationPrompts: strategy.notificationPrompts } : {}),
            ...(strategy.notificationChannelStrategy
              ? {
                  notificationChannelStrategy: strategy.notificationChannelStrategy.map((s) => ({
                    notificationChannelNames: s.notificationChannelNames,
                    ...(s.renotifyInterval !== undefined
                      ? { renotifyInterval: seconds(s.renotifyInterval) }
                      : {}),
                  })),
                }
              : {}),
          },
        }
      : {}),
    ...(p.input.severity ? { severity: p.input.severity } : {}),
    creationRecord: { mutateTime: p.created, mutatedBy: 'emulator' },
    mutationRecord: { mutateTime: p.updated ?? p.created, mutatedBy: 'emulator' },
  };
}

export function channelView(c: Channel) {
  return {
    name: c.name,
    type: c.input.type,
    displayName: c.input.displayName ?? '',
    description: c.input.description ?? '',
    labels: c.input.labels,
    userLabels: c.input.userLabels ?? {},
    enabled: c.input.enabled ?? true,
    creationRecord: { mutateTime: c.created },
  };
}
