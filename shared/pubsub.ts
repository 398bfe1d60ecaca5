import { z } from 'zod';

/** The CloudEvent type Eventarc uses for Pub/Sub messages. */
export const messagePublishedType = 'google.cloud.pubsub.topic.v1.messagePublished';

/** Largest `message.data` accepted (base64 text): Pub/Sub's own limit is 10 MB a message. */
export const maxMessageDataChars = 14_000_000;

/**
 * A Pub/Sub message as a `messagePublished` CloudEvent carries it, or as a push subscription posts
 * it (https://cloud.google.com/pubsub/docs/push#receive_push): `data` is base64, `attributes` and the
 * ids may be missing.
 */
export const pubsubEnvelopeSchema = z.object({
  message: z.object({
    data: z.string().min(1).max(maxMessageDataChars),
    messageId: z.string().max(256).nullish(),
    publishTime: z.string().max(64).nullish(),
    attributes: z.record(z.string(), z.string()).nullish(),
  }),
  subscription: z.string().max(1024).nullish(),
});
export type PubsubEnvelope = z.infer<typeof pubsubEnvelopeSchema>;

export type DecodedMessage = { ok: true; messageId?: string; text: string } | { ok: false; reason: string };

/**
 * The message's data as UTF-8 text, at most `maxBytes` decoded bytes; a body that is not a Pub/Sub
 * message, or data that is not base64, is refused with a reason (and acknowledged by the caller).
 */
export function decodePubsubMessage(data: unknown, maxBytes: number): DecodedMessage {
  const envelope = pubsubEnvelopeSchema.safeParse(data);
  if (!envelope.success) return { ok: false, reason: 'not a Pub/Sub message: message.data is missing' };
  const raw = envelope.data.message.data;
  if (raw.length > Math.ceil(maxBytes / 3) * 4)
    return { ok: false, reason: `message.data exceeds ${maxBytes} bytes` };
  // Standard or URL-safe base64, as Pub/Sub clients send it.
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(raw)) return { ok: false, reason: 'message.data is not base64' };
  const messageId = envelope.data.message.messageId ?? undefined;
  return { ok: true, text: Buffer.from(raw, 'base64').toString('utf8'), ...(messageId ? { messageId } : {}) };
}
