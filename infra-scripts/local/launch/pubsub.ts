import { startProcess } from './process';
import { toolPath } from './tools';

export interface PubsubEmulator {
  /** host:port, the value for PUBSUB_EMULATOR_HOST. */
  host: string;
  stop(): Promise<void>;
}

/** Google's in-memory Pub/Sub fake (pstest) over gRPC; port 0 picks a free one. */
export async function startPubsubEmulator(
  options: { host?: string; port?: number } = {},
): Promise<PubsubEmulator> {
  let address: string | undefined;
  const proc = await startProcess({
    name: 'pubsub-emulator',
    command: toolPath('pubsub-emulator'),
    args: [`--host=${options.host ?? '127.0.0.1'}`, `--port=${options.port ?? 0}`],
    readyTimeoutMs: 15_000,
    // The emulator prints one JSON line with its address once it listens.
    ready: async (output) => {
      const line = output()
        .split('\n')
        .find((l) => l.includes('"address"'));
      if (!line) return false;
      address = (JSON.parse(line) as { address: string }).address;
      return true;
    },
  });
  if (!address) throw new Error('pubsub-emulator did not print its address');
  return { host: address, stop: async () => void (await proc.stop()) };
}
