/**
 * Eventarc v1 triggers, read-only here: Cloud Functions makes one per event-triggered function
 * (`--trigger-topic`), with the push subscription it created on the function's topic in
 * `transport.pubsub.subscription` (https://cloud.google.com/eventarc/docs/reference/rest/v1/projects.locations.triggers).
 */
import { randomUUID } from 'node:crypto';

import type { ApiModule, ProjectFacts } from '../contract';
import { guard, notFound, now, router } from './kit';

export interface EventarcModule extends ApiModule {
  putTrigger(trigger: Record<string, unknown> & { name: string }): void;
  /** Removes a trigger and gives back what it was. */
  deleteTrigger(name: string): Record<string, unknown> | undefined;
}

export function eventarcModule(facts: ProjectFacts): EventarcModule {
  const triggers = new Map<string, Record<string, unknown>>();
  const route = router([
    [
      'GET /v1/projects/{project}/locations/{location}/triggers/{trigger}',
      (_req, p) => {
        if (p.project !== facts.project && p.project !== facts.projectNumber)
          notFound(`Project ${p.project}`);
        const name = `projects/${facts.project}/locations/${p.location}/triggers/${p.trigger}`;
        return { status: 200, body: triggers.get(name) ?? notFound(`Trigger ${name}`) };
      },
    ],
  ]);
  return {
    name: 'eventarc',
    handle: guard(route),
    inventory: () => [...triggers.keys()].map((name) => ({ kind: 'trigger', name })),
    putTrigger: (trigger) => {
      const t = now();
      triggers.set(trigger.name, {
        uid: randomUUID(),
        createTime: t,
        updateTime: t,
        etag: randomUUID().slice(0, 8),
        ...trigger,
      });
    },
    deleteTrigger: (name) => {
      const trigger = triggers.get(name);
      triggers.delete(name);
      return trigger;
    },
  };
}
