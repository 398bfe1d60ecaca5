import { type Channel, type Policy, seconds } from './alerting-schemas';

/** The REST JSON of a stored alert policy and notification channel, with the defaults filled in. */

export function policyView(p: Policy) {
  const cond = p.input.conditions[0]!;
  const c = cond.conditionThreshold;
  const agg = c.aggregations?.[0];
  const strategy = p.input.alertStrategy;
  return {
    name: p.name,
    displayName: p.input.displayName,
    ...(p.input.documentation ? { documentation: p.input.documentation } : {}),
    userLabels: p.input.userLabels ?? {},
    conditions: [
      {
        name: p.conditionName,
        displayName: cond.displayName,
        conditionThreshold: {
          filter: c.filter,
          comparison: c.comparison,
          thresholdValue: c.thresholdValue,
          duration: seconds(c.duration),
          ...(agg
            ? {
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
              }
            : {}),
          trigger: { count: 1 },
        },
      },
    ],
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
