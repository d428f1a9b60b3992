import { InvalidParameterValue } from '../../interfaces/errors.js';
import { RESOURCE_PART, type ResourcePath } from '../broker/kbs-wire.js';

/**
 * Parses a KBS resource URI `kbs:///<repository>/<type>/<tag>` (empty host: the configured broker;
 * guest-components `ResourceUri`). A host part (`kbs://host/...`) is accepted and ignored only when
 * empty; each part must be a plain name (no traversal).
 *
 * @throws InvalidParameterValue
 */
export function parseResourceUri(uri: string): ResourcePath {
  const match = /^kbs:\/\/([^/]*)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (match === null) {
    throw new InvalidParameterValue('resource uri', 'must be kbs:///<repository>/<type>/<tag>');
  }
  const [, host, repository, type, tag] = match as unknown as [string, string, string, string, string];
  if (host !== '') {
    throw new InvalidParameterValue('resource uri', 'must have an empty host (kbs:///…): the broker is configured, not named in the URI');
  }
  for (const part of [repository, type, tag]) {
    if (!RESOURCE_PART.test(part)) {
      throw new InvalidParameterValue('resource uri', `"${part}" is not a valid resource path part`);
    }
  }
  return { repository, type, tag };
}
