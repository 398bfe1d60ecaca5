import { sleep } from '../launch';

/** Where a scenario writes its report, line by line. */
export type Out = (line: string) => void;

/** What a scenario reports back to its caller (an e2e test, the status page). */
export type Outcome = Record<string, unknown>;

/** Polls `check` every second until it returns a value, printing `what` every 10 s; gives up after `ms`. */
export async function watch<T>(
  out: Out,
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  let lastSay = Date.now();
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      out(`  gave up waiting for ${what} after ${Math.round(ms / 1000)} s`);
      return undefined;
    }
    if (Date.now() - lastSay > 10_000) {
      out(`  … still waiting for ${what}`);
      lastSay = Date.now();
    }
    await sleep(1000);
  }
}
