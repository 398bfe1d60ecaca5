/**
 * Pub/Sub v1 admin (gcloud pubsub speaks REST): topics, subscriptions with dead-letter and retry
 * policies and push config, and the IAM policy of each. The limits checked are those of
 * https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions (dead letters after
 * 5-100 attempts, retry delays within 0-600 s, retention 10 min-31 days). A deleted topic leaves its
 * subscriptions pointing at `_deleted-topic_`, as Pub/Sub does.
 */
import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import type { PolicyStore } from './iam-policy';
import { alreadyExists, applyMask, duration, guard, invalid, labels, notFound, parse, router } from './kit';

const seconds = (d: string): number => Number(d.slice(0, -1));
const topicBody = z.strictObject({
  name: z.string().optional(),
  labels: labels.optional(),
  messageRetentionDuration: duration.optional(),
  kmsKeyName: z.string().optional(),
});
const subscriptionFields = z.strictObject({
  name: z.string().optional(),
  topic: z.string().optional(),
  labels: labels.optional(),
  ackDeadlineSeconds: z.number().int().min(10).max(600).optional(),
  messageRetentionDuration: duration.refine((d) => seconds(d) >= 600 && seconds(d) <= 31 * 86400).optional(),
  retainAckedMessages: z.boolean().optional(),
  enableMessageOrdering: z.boolean().optional(),
  expirationPolicy: z.strictObject({ ttl: duration.optional() }).optional(),
  pushConfig: z
    .strictObject({
      pushEndpoint: z.string().optional(),
      attributes: z.record(z.string(), z.string()).optional(),
      oidcToken: z
        .strictObject({ serviceAccountEmail: z.string(), audience: z.string().optional() })
        .optional(),
      noWrapper: z.strictObject({ writeMetadata: z.boolean().optional() }).optional(),
    })
    .optional(),
  deadLetterPolicy: z
    .strictObject({
      deadLetterTopic: z.string().regex(/^projects\/[^/]+\/topics\/[^/]+$/),
      maxDeliveryAttempts: z.number().int().min(5).max(100).optional(),
    })
    .optional(),
  retryPolicy: z
    .strictObject({
      minimumBackoff: duration.refine((d) => seconds(d) <= 600).optional(),
      maximumBackoff: duration.refine((d) => seconds(d) <= 600).optional(),
    })
    .optional(),
  filter: z.string().optional(),
});
const patchSubscription = z.strictObject({ subscription: subscriptionFields, updateMask: z.string().min(1) });

type Resource = Record<string, unknown>;

export interface PubSubModule extends ApiModule {
  /** For the functions stand-in: the push subscription Eventarc makes for a Pub/Sub trigger. */
  createSubscription(id: string, body: Resource): Resource;
  deleteSubscription(id: string): void;
}

export function pubsubModule(facts: ProjectFacts, policies: PolicyStore): PubSubModule {
  const { project } = facts;
  const topics = new Map<string, Resource>();
  const subscriptions = new Map<string, Resource>();
  const topicName = (id: string): string => `projects/${project}/topics/${id}`;
  const subName = (id: string): string => `projects/${project}/subscriptions/${id}`;
  const known = (p: string | undefined): void => {
    if (p !== project) notFound(`Resource not found (resource=projects/${p})`);
  };
  const topicOf = (p: Record<string, string>): Resource => {
    known(p.project);
    return topics.get(p.topic ?? '') ?? notFound(`Resource not found (resource=${p.topic})`);
  };
  const subOf = (p: Record<string, string>): Resource => {
    known(p.project);
    return subscriptions.get(p.sub ?? '') ?? notFound(`Resource not found (resource=${p.sub})`);
  };
  const needTopic = (name: unknown, what: string): void => {
    const id = typeof name === 'string' ? name.split('/').pop() : undefined;
    if (!id || !topics.has(id) || name !== topicName(id)) notFound(`Resource not found (resource=${what})`);
  };
  const checkSubscription = (s: z.infer<typeof subscriptionFields>): void => {
    if (s.deadLetterPolicy) needTopic(s.deadLetterPolicy.deadLetterTopic, s.deadLetterPolicy.deadLetterTopic);
    const r = s.retryPolicy;
    if (r?.minimumBackoff && r.maximumBackoff && seconds(r.minimumBackoff) > seconds(r.maximumBackoff)) {
      invalid('retryPolicy.minimumBackoff must not exceed maximumBackoff');
    }
  };
  const createSubscription = (id: string, body: Resource): Resource => {
    const s = parse(subscriptionFields, body, 'Subscription');
    if (!s.topic) invalid('Subscription.topic is required');
    needTopic(s.topic, s.topic);
    checkSubscription(s);
    if (subscriptions.has(id)) alreadyExists(`Resource already exists in the project (resource=${id})`);
    const sub = {
      ackDeadlineSeconds: 10,
      messageRetentionDuration: '604800s',
      expirationPolicy: { ttl: '2678400s' },
      pushConfig: {},
      state: 'ACTIVE',
      ...s,
      name: subName(id),
    };
    subscriptions.set(id, sub);
    return sub;
  };

  const route = router([
    [
      'PUT /v1/projects/{project}/topics/{topic}',
      (req, p) => {
        known(p.project);
        const body = parse(topicBody, req.body, 'Topic');
        const id = p.topic ?? '';
        if (!/^[A-Za-z][\w.~+%-]{2,254}$/.test(id) || id.startsWith('goog'))
          invalid(`Invalid topic name ${id}`);
        if (topics.has(id)) alreadyExists('Resource already exists in the project (resource=' + id + ')');
        const topic = { ...body, name: topicName(id) };
        topics.set(id, topic);
        return { status: 200, body: topic };
      },
    ],
    ['GET /v1/projects/{project}/topics/{topic}', (_req, p) => ({ status: 200, body: topicOf(p) })],
    [
      'DELETE /v1/projects/{project}/topics/{topic}',
      (_req, p) => {
        topicOf(p);
        topics.delete(p.topic ?? '');
        policies.drop(topicName(p.topic ?? ''));
        for (const s of subscriptions.values())
          if (s.topic === topicName(p.topic ?? '')) s.topic = '_deleted-topic_';
        return { status: 200, body: {} };
      },
    ],
    [
      'PUT /v1/projects/{project}/subscriptions/{sub}',
      (req, p) => (
        known(p.project),
        { status: 200, body: createSubscription(p.sub ?? '', req.body as Resource) }
      ),
    ],
    ['GET /v1/projects/{project}/subscriptions/{sub}', (_req, p) => ({ status: 200, body: subOf(p) })],
    [
      'PATCH /v1/projects/{project}/subscriptions/{sub}',
      (req, p) => {
        const sub = subOf(p);
        const { subscription, updateMask } = parse(patchSubscription, req.body, 'UpdateSubscriptionRequest');
        checkSubscription(subscription);
        const next = applyMask(sub, subscription as Resource, updateMask);
        subscriptions.set(p.sub ?? '', next);
        return { status: 200, body: next };
      },
    ],
    [
      'DELETE /v1/projects/{project}/subscriptions/{sub}',
      (_req, p) => {
        subOf(p);
        subscriptions.delete(p.sub ?? '');
        policies.drop(subName(p.sub ?? ''));
        return { status: 200, body: {} };
      },
    ],
    ...(['topics', 'subscriptions'] as const).flatMap((kind) => {
      const one = kind === 'topics' ? topicOf : subOf;
      const full = kind === 'topics' ? topicName : subName;
      const path = `/v1/projects/{project}/${kind}/{${kind === 'topics' ? 'topic' : 'sub'}}`;
      const id = (p: Record<string, string>): string => full(p.topic ?? p.sub ?? '');
      return [
        [`GET ${path}:getIamPolicy`, (req, p) => (one(p), policies.get(id(p), req))],
        [`POST ${path}:getIamPolicy`, (req, p) => (one(p), policies.get(id(p), req))],
        [`POST ${path}:setIamPolicy`, (req, p) => (one(p), policies.set(id(p), req))],
      ] satisfies Parameters<typeof router>[0];
    }),
  ]);
  return {
    name: 'pubsub',
    handle: guard(route),
    inventory: () => [
      ...[...topics.values()].map((t) => ({ kind: 'topic', name: String(t.name) })),
      ...[...subscriptions.values()].map((s) => ({ kind: 'subscription', name: String(s.name) })),
    ],
    createSubscription,
    deleteSubscription: (id) => {
      subscriptions.delete(id);
      policies.drop(subName(id));
    },
  };
}
