/**
 * Republishes what a function's dead-letter topic holds onto the function's own topic, once the cause
 * is fixed. The deploy gives every function topic `<topic>-dead-letter` and a subscription
 * `<topic>-dead-letter-hold` that keeps its messages for 7 days; this reads that subscription,
 * publishes each message again (same data, same attributes but Pub/Sub's dead-letter ones) and
 * acknowledges it only after the publish succeeded, so a failed run loses nothing. The functions are
 * idempotent, so a message replayed twice is handled once.
 *   node dist/infra-scripts/ops/replay-dead-letters.js --project ID --topic instance-events [--max 1000] [--dry-run]
 * With PUBSUB_EMULATOR_HOST set it talks to an emulator; otherwise to Google with the caller's
 * Application Default Credentials (roles/pubsub.subscriber on the hold subscription and
 * roles/pubsub.publisher on the topic are enough).
 */
import { PubSub, type Message } from '@google-cloud/pubsub';
import { z } from 'zod';

const argsSchema = z.object({
  project: z.string().regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a project id'),
  // Pub/Sub topic names: 3–255 characters, starting with a letter, not `goog`.
  topic: z.string().regex(/^(?!goog)[A-Za-z][-A-Za-z0-9._~%+]{2,200}$/, 'a topic name'),
  max: z.coerce.number().int().min(1).max(100_000).default(1000),
  dryRun: z.boolean().default(false),
  /** How long a quiet subscription is waited on before the run ends. */
  idleMs: z.coerce.number().int().min(100).max(60_000).default(3000),
});
export type ReplayArgs = z.infer<typeof argsSchema>;

export interface ReplaySummary {
  held: number;
  replayed: number;
  duplicates: number;
  failed: number;
  dryRun: boolean;
}

/** Attributes Pub/Sub adds when it forwards a message to a dead-letter topic. */
const deadLetterAttribute = /^CloudPubSubDeadLetter/;

export function parseReplayArgs(argv: readonly string[]): ReplayArgs {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--dry-run') raw.dryRun = true;
    else if (/^--(project|topic|max|idle-ms)$/.test(arg)) raw[camel(arg.slice(2))] = argv[++i];
    else if (/^--(project|topic|max|idle-ms)=/.test(arg))
      raw[camel(arg.slice(2, arg.indexOf('=')))] = arg.slice(arg.indexOf('=') + 1);
    else throw new Error(`unknown argument ${arg}`);
  }
  const parsed = argsSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join('; '));
  return parsed.data;
}

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Reads the hold subscription until it stays quiet for `idleMs` or `max` messages were handled. */
export async function replayDeadLetters(
  args: ReplayArgs,
  options: { pubsub?: PubSub; progress?: (line: string) => void } = {},
): Promise<ReplaySummary> {
  const pubsub = options.pubsub ?? new PubSub({ projectId: args.project });
  const progress = options.progress ?? ((line: string) => process.stdout.write(`${line}\n`));
  const topic = pubsub.topic(args.topic, { batching: { maxMessages: 1 } });
  // A dry run holds every message it reads until it ends (so none is read twice), then gives all
  // back at once; a real run acknowledges each after its publish, ten at a time.
  const hold = pubsub.subscription(`${args.topic}-dead-letter-hold`, {
    flowControl: { maxMessages: args.dryRun ? args.max : 10, allowExcessMessages: false },
    closeOptions: { behavior: 'NACK' },
  });
  const summary: ReplaySummary = { held: 0, replayed: 0, duplicates: 0, failed: 0, dryRun: args.dryRun };
  // A message may be delivered again (at-least-once, or a slow ack): each is published once per run.
  const seen = new Set<string>();
  const pending = new Set<Promise<void>>();

  const handle = async (message: Message) => {
    if (seen.has(message.id)) {
      summary.duplicates++;
      message.ack();
      return;
    }
    seen.add(message.id);
    summary.held++;
    if (args.dryRun) return;
    const attributes = Object.fromEntries(
      Object.entries(message.attributes).filter(([k]) => !deadLetterAttribute.test(k)),
    );
    try {
      await topic.publishMessage({ data: message.data, attributes });
      message.ack();
      summary.replayed++;
      if (summary.replayed % 100 === 0) progress(`replayed ${summary.replayed} so far`);
    } catch (err) {
      summary.failed++;
      message.nack();
      progress(
        `message ${message.id} not replayed (left in the hold subscription): ${(err as Error).message}`,
      );
    }
  };

  progress(`${args.dryRun ? 'reading' : 'replaying'} ${args.topic}-dead-letter-hold → ${args.topic}`);
  await new Promise<void>((resolve, reject) => {
    let idle: NodeJS.Timeout;
    const finish = () => {
      clearTimeout(idle);
      hold.removeAllListeners('message');
      resolve();
    };
    const quiet = () => {
      clearTimeout(idle);
      idle = setTimeout(finish, args.idleMs);
    };
    hold.on('message', (message: Message) => {
      quiet();
      if (summary.held >= args.max) return message.nack();
      const p = handle(message).finally(() => pending.delete(p));
      pending.add(p);
      if (summary.held >= args.max) finish();
    });
    hold.on('error', (err) => {
      clearTimeout(idle);
      reject(err);
    });
    quiet();
  });
  await Promise.all(pending);
  await hold.close();
  await topic.flush();
  progress(
    `${args.dryRun ? 'dry run: ' : ''}${summary.held} held, ${summary.replayed} replayed, ` +
      `${summary.failed} failed, ${summary.duplicates} duplicate deliveries`,
  );
  return summary;
}

if (require.main === module) {
  let args: ReplayArgs;
  try {
    args = parseReplayArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(
      `${(err as Error).message}\nusage: replay-dead-letters --project ID --topic NAME [--max N] [--dry-run]\n`,
    );
    process.exit(2);
  }
  replayDeadLetters(args).then(
    (s) => (process.exitCode = s.failed ? 1 : 0),
    (err: unknown) => {
      process.stderr.write(`replay failed: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
