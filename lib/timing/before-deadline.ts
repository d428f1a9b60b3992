/** `work`, or the deadline's reason once it aborts (whatever `work` does afterwards is ignored). */
export function beforeDeadline<T>(work: Promise<T>, deadline: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // A deadline already past fires no abort event: without this the work alone decided, unbounded.
    if (deadline.aborted) {
      work.catch(() => undefined);
      reject(deadline.reason as Error);
      return;
    }
    const onAbort = (): void => reject(deadline.reason as Error);
    deadline.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => deadline.removeEventListener('abort', onAbort));
  });
}
