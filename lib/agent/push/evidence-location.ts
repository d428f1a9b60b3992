/**
 * The path to send the evidence to, from the capabilities reply's `Location` (resolved against the
 * capabilities URL `requestUrl`, RFC 9110 §10.2.2), or undefined when it is not a URL or leaves the
 * verifier's origin (scheme, host and port): following it would send the bearer token and the
 * evidence to another server, perhaps over plain HTTP.
 */
export function sameOriginPath(location: string, requestUrl: URL): string | undefined {
  let target: URL;
  try {
    target = new URL(location, requestUrl);
  } catch {
    return undefined;
  }
  return target.origin === requestUrl.origin ? `${target.pathname}${target.search}` : undefined;
}
