import type { CloudEvent } from '@google-cloud/functions-framework';
import { Writable } from 'node:stream';
import { createHeartbeat } from '../../functions/heartbeat';
import { pubsubFunction } from '../../functions/pubsub-function';
import type { MetricPoint, MetricsWriter } from '../../shared/gcp/monitoring';
import { createLogger } from '../../shared/logging';
import { messagePublishedType } from '../../shared/pubsub';

function recording(fail = false) {
  const written: Array<{ project: string; points: readonly MetricPoint[]; at: number }> = [];
  const writer: MetricsWriter = {
    write: (project, points, at) => {
      written.push({ project, points, at });
      return fail ? Promise.reject(new Error('monitoring down')) : Promise.resolve();
    },
  };
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'heartbeat-test',
    destination: new Writable({
      write(chunk: Buffer, _e, done) {
        logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  });
  return { writer, written, logs, logger };
}

describe('createHeartbeat', () => {
  it('writes function_heartbeat{function} = 1, at most once a minute per instance', async () => {
    const r = recording();
    let now = 1_000_000;
    const beat = createHeartbeat('instanceEvents', { ...r, project: 'p', now: () => now });
    await beat();
    now += 59_999;
    await beat();
    now += 1;
    await beat();
    expect(r.written.map((w) => w.at)).toEqual([1_000_000, 1_060_000]);
    expect(r.written[0]).toEqual({
      project: 'p',
      points: [
        {
          type: 'custom.googleapis.com/ilb/function_heartbeat',
          labels: { function: 'instanceEvents' },
          value: 1,
        },
      ],
      at: 1_000_000,
    });
  });

  it('a failed write is a WARNING line, never a failure; no project: nothing written', async () => {
    const r = recording(true);
    await expect(createHeartbeat('healthSweep', { ...r, project: 'p' })()).resolves.toBeUndefined();
    expect(r.logs).toEqual([
      expect.objectContaining({ message: 'heartbeat not written', severity: 'WARNING' }),
    ]);
    const none = recording();
    await createHeartbeat('healthSweep', { ...none, project: undefined })();
    expect(none.written).toEqual([]);
  });
});

describe('the Pub/Sub shell writes the heartbeat', () => {
  const event = {
    id: 'e-1',
    type: messagePublishedType,
    specversion: '1.0',
    source: 't',
    data: {},
  } as CloudEvent<unknown>;
  const shell = (handler: () => Promise<unknown>, ackOnFailure = false) => {
    const r = recording();
    const beats: string[] = [];
    const fn = pubsubFunction('shellTest', r.logger, () => handler, {
      ackOnFailure,
      heartbeat: (name) => () => {
        beats.push(name);
        return Promise.resolve();
      },
    });
    return { fn, beats };
  };

  it('after a run that completes, not after one that fails (retried or acknowledged)', async () => {
    const ok = shell(() => Promise.resolve());
    await ok.fn(event);
    expect(ok.beats).toEqual(['shellTest']);
    const retried = shell(() => Promise.reject(new Error('x')));
    await expect(retried.fn(event)).rejects.toThrow('x');
    expect(retried.beats).toEqual([]);
    const acked = shell(() => Promise.reject(new Error('x')), true);
    await acked.fn(event);
    expect(acked.beats).toEqual([]);
  });
});
