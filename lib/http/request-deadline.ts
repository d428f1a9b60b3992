/**
 * Runs `run` under a deadline for the whole exchange: `timeoutMs` after the call, its signal aborts and
 * the call rejects with `onExpiry()` whatever `run` is doing, even when it ignores the signal. A socket
 * idle timeout (axios' `timeout`) is not enough: a server that drips one byte now and then never trips
 * it and holds the caller for ever. (`ThinHttpsClient` keeps its own per-request deadline.)
 */
export async function withDeadline<T>(timeoutMs: number, onExpiry: () => Error, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(onExpiry());
    }, timeoutMs);
  });
  const running = run(controller.signal);
  // A failure of `run` after the deadline has nothing left to tell: the expiry was reported.
  running.catch(() => undefined);
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
