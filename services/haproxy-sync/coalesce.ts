/**
 * Runs `task` for every poke, never two at once: pokes that arrive while it runs fold into one
 * more run, which then sees the newest state. A burst of renders costs at most two applies.
 */
export interface Coalescer {
  poke(): void;
  /** Resolves once no run is in progress or pending. */
  idle(): Promise<void>;
}

export function coalesce(task: () => Promise<void>, onError: (err: unknown) => void): Coalescer {
  let running: Promise<void> | undefined;
  let pending = false;
  const loop = async () => {
    while (pending) {
      pending = false;
      try {
        await task();
      } catch (err) {
        onError(err);
      }
    }
    running = undefined;
  };
  return {
    poke() {
      pending = true;
      running ??= loop();
    },
    async idle() {
      while (running) await running;
    },
  };
}
