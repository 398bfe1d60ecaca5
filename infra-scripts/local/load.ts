import { Agent, request } from 'node:http';

export interface LoadResult {
  ok: number;
  failed: number;
  /** Failure reasons (HTTP status or error code) with their counts. */
  reasons: Record<string, number>;
  /** Per-request latency in ms, successful requests only. */
  latencies: number[];
  /** Which backend answered (the X-ILB-Server slot or the body's instance name), with counts. */
  servedBy: Record<string, number>;
  /** When (performance.now()) each successful answer came, and from which backend. */
  answers: [number, string][];
  durationMs: number;
}

export interface Load {
  /** Results so far, without stopping. */
  snapshot(): LoadResult;
  stop(): Promise<LoadResult>;
}

/**
 * Closed-loop HTTP load: `concurrency` workers on keep-alive connections, each sending its next
 * request when the previous one is answered. Bounded by whoever calls stop().
 */
export function startLoad(options: {
  host: string;
  port: number;
  path?: string;
  method?: string;
  /** A request body (sent with its Content-Length), e.g. for POST. */
  body?: string;
  concurrency?: number;
  timeoutMs?: number;
  /** Pauses between a worker's requests, to keep the rate moderate. */
  pauseMs?: number;
  /**
   * Target rate over all workers. Each worker keeps its own schedule, so a refused connection (which
   * fails at once) does not turn into a flood of failures: failures count time, not loop speed.
   */
  ratePerSec?: number;
}): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency ?? 8 });
  const result: LoadResult = {
    ok: 0,
    failed: 0,
    reasons: {},
    latencies: [],
    servedBy: {},
    answers: [],
    durationMs: 0,
  };
  const started = performance.now();
  let running = true;
  const body = options.body;

  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const fail = (reason: string) => {
        result.failed++;
        result.reasons[reason] = (result.reasons[reason] ?? 0) + 1;
        resolve();
      };
      const req = request(
        {
          host: options.host,
          port: options.port,
          path: options.path ?? '/',
          method: options.method ?? 'GET',
          headers: body === undefined ? undefined : { 'Content-Length': Buffer.byteLength(body) },
          agent,
          timeout: options.timeoutMs ?? 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
          res.on('end', () => {
            // Only a 200 is an answer: the backend and frontend answer GET and POST with 200.
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            result.ok++;
            result.latencies.push(performance.now() - t0);
            const body = Buffer.concat(chunks).toString('utf8');
            const name = /"name":"([^"]+)"/.exec(body)?.[1] ?? String(res.headers['x-ilb-server'] ?? '?');
            result.servedBy[name] = (result.servedBy[name] ?? 0) + 1;
            result.answers.push([performance.now(), name]);
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      req.end(body);
    });

  const concurrency = options.concurrency ?? 8;
  const intervalMs = options.ratePerSec ? (1000 * concurrency) / options.ratePerSec : 0;
  const workers = Array.from({ length: concurrency }, async (_, w) => {
    let next = performance.now() + (intervalMs * w) / concurrency;
    while (running) {
      if (intervalMs) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // Behind schedule (a slow answer): carry on from now, without a catch-up burst.
        next = Math.max(next, performance.now() - intervalMs) + intervalMs;
      }
      await once();
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  });

  const snapshot = (): LoadResult => ({ ...result, durationMs: performance.now() - started });
  return {
    snapshot,
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return snapshot();
    },
  };
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
