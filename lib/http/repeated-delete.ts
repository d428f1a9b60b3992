import { notFoundOnResend } from './client-errors.js';

/**
 * Runs a DELETE. When its first attempt's kept-alive connection was closed under it and the request
 * sent once more found nothing (404), the first attempt did the deleting (`notFoundOnResend`): the
 * result is `done`. Any other outcome, a 404 to a DELETE sent once included, is `run`'s own.
 */
export async function deleteOnce<T>(run: () => Promise<T>, done: T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (notFoundOnResend(error)) return done;
    throw error;
  }
}
