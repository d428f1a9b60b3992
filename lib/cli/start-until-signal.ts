import type { Closeable } from '../http/service-lifecycle.js';

/**
 * Runs `start` with SIGTERM and SIGINT turned into an abort of the signal it is given, so a stop
 * while starting (a registrar that is away, a TPM being manufactured) releases what was opened —
 * the agent's own swtpm above all, which runs in a process group of its own and gets no Ctrl-C.
 * Resolves to the started service, or to undefined when a signal stopped the start (a service that
 * finished starting just as the signal came is closed first). The handlers are removed before it
 * resolves, so the caller installs its own (`runUntilSignal`) without a gap in between.
 */
export async function startUntilSignal<T extends Closeable>(start: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
  const stopping = new AbortController();
  const onSignal = (): void => stopping.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const started = await start(stopping.signal);
    if (!stopping.signal.aborted) return started;
    await started.close();
    return undefined;
  } catch (error) {
    if (stopping.signal.aborted) return undefined;
    throw error;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}
