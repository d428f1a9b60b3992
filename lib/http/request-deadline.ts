/**
 * Runs `run` under a deadline for the whole exchange: `timeoutMs` after the call, its signal aborts
 * and the call rejects with `onExpiry()` whatever `run` was doing. axios' own `timeout` is a socket
 * idle timeout: a server that drips one byte now and then never trips it and holds the caller forever.
 */
export async function withDeadline<T>(timeoutMs: number, onExpiry: () => Error, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await run(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) {
      throw onExpiry();
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
