/** An HTTP status the next request may not get: a server error, a request timeout (408) or a rate limit (429). */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
