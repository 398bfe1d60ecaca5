import { topicFunctions } from '../../../functions/catalog';
import type { Kit, Part } from './kit';

/** With healthSweep: a Cloud Scheduler job publishes its tick on the configured schedule (UTC). */
export function schedulerSteps(k: Kit): Part {
  const { c, n, marker } = k;
  if (!c.functions.includes('healthSweep')) return { steps: [] };
  const topic = topicFunctions.healthSweep.trigger.topic;
  const location = `--location=${c.region}`;
  return {
    steps: [
      k.resource(
        'scheduler-health-sweep',
        `Cloud Scheduler job ${n.scheduler} (${c.healthSweepSchedule}) → ${topic}`,
        {
          group: ['scheduler', 'jobs'],
          type: 'pubsub',
          name: n.scheduler,
          scope: [location],
          args: [
            location,
            `--schedule=${c.healthSweepSchedule}`,
            '--time-zone=Etc/UTC',
            `--topic=projects/${c.project}/topics/${topic}`,
            '--message-body={}',
            `--description=${marker}`,
          ],
        },
      ),
    ],
  };
}
