/**
 * `Promise.all` that waits for every promise to settle before it rejects with the first failure (in
 * the order given). Starts run side by side with it are torn down only once none is still running:
 * with `Promise.all` the teardown ran at the first failure, and what the others started afterwards
 * (swtpm processes, agents) was never stopped.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}
