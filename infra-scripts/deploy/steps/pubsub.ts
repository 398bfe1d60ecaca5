import { topicFunctions } from '../../../functions/catalog';
import type { Step } from '../plan';
import { tiers } from './groups';
import type { Kit, Part } from './kit';

/** `member` may publish to `topic`; `who` says who that is in the step's title. */
export const topicPublisher = (k: Kit, id: string, topic: string, member: string, who: string): Step =>
  k.iamGrant(
    id,
    `${who} publishes to ${topic}`,
    ['pubsub', 'topics'],
    topic,
    'roles/pubsub.publisher',
    member,
  );

/** Each function's topic with its dead-letter topic, and a subscription holding the dead letters. */
export function topicSteps(k: Kit): Part {
  const { c, labels } = k;
  const topic = (t: string) =>
    k.resource(`topic-${t}`, `Pub/Sub topic ${t}`, {
      group: ['pubsub', 'topics'],
      name: t,
      args: [`--labels=${labels}`],
    });
  return {
    steps: c.functions.flatMap((f) => {
      const t = topicFunctions[f].trigger.topic;
      return [
        topic(t),
        topic(`${t}-dead-letter`),
        k.resource(
          `subscription-${t}-dead-letter`,
          `subscription ${t}-dead-letter-hold (keeps dead letters 7 days)`,
          {
            group: ['pubsub', 'subscriptions'],
            name: `${t}-dead-letter-hold`,
            args: [`--topic=${t}-dead-letter`, '--message-retention-duration=7d', `--labels=${labels}`],
          },
        ),
      ];
    }),
  };
}

/**
 * With instanceEvents: a log sink routes the audit activity and system events (preemption, host
 * errors) of the watched instances only to its topic, and its writer identity may publish there.
 */
export function sinkSteps(k: Kit): Part {
  const { c, n, P, marker } = k;
  if (!c.functions.includes('instanceEvents')) return { steps: [] };
  const topic = topicFunctions.instanceEvents.trigger.topic;
  const logs = ['activity', 'system_event']
    .map((l) => `logName="projects/${c.project}/logs/cloudaudit.googleapis.com%2F${l}"`)
    .join(' OR ');
  const watched = tiers
    .map(({ role }) => `protoPayload.resourceName:"/instances/${n.baseInstanceName(role)}-"`)
    .join(' OR ');
  const filter = `resource.type="gce_instance" AND (${logs}) AND protoPayload.methodName:"compute.instances." AND (${watched})`;
  return {
    steps: [
      k.resource('sink-instance-events', `log sink ${n.sink} → ${topic}`, {
        group: ['logging', 'sinks'],
        name: n.sink,
        args: [
          `pubsub.googleapis.com/projects/${c.project}/topics/${topic}`,
          `--log-filter=${filter}`,
          `--description=${marker}`,
        ],
      }),
      topicPublisher(k, 'sink-writer-publishes', topic, '@{sinkWriter}', "the sink's writer identity"),
    ],
    lookups: { sinkWriter: ['logging', 'sinks', 'describe', n.sink, ...P, '--format=value(writerIdentity)'] },
  };
}
