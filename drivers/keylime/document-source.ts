import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/**
 * Where a policy document (allowlist, exclude list, runtime policy, refstate) comes from: a local
 * file or an http(s) URL. `field` is the `driver_info` key it was read from, for error messages.
 */
export type DocumentSource =
  | { readonly kind: 'file'; readonly path: string; readonly field: string }
  | { readonly kind: 'url'; readonly url: string; readonly field: string };

/** A source plus the sha256 it must match, when one was given. */
export interface CheckedDocument {
  readonly source: DocumentSource;
  /** Lowercase hex sha256, or undefined for an unchecked document. */
  readonly checksum: string | undefined;
}

/**
 * Parses a `driver_info` document location: an absolute path, a `file://` URL, or an http(s) URL.
 * A relative path is refused: it would depend on the orchestrator's working directory.
 *
 * @throws InvalidParameterValue naming `driver_info.<field>`.
 */
export function parseDocumentSource(field: string, text: string): DocumentSource {
  const name = `driver_info.${field}`;
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch (cause) {
      throw new InvalidParameterValue(name, `"${text}" is not a URL`, { cause });
    }
    if (url.username !== '' || url.password !== '') {
      throw new InvalidParameterValue(name, 'must not carry credentials in the URL');
    }
    return { kind: 'url', url: url.href, field };
  }
  if (/^file:\/\//i.test(text)) {
    let path: string;
    try {
      path = fileURLToPath(text);
    } catch (cause) {
      throw new InvalidParameterValue(name, `"${text}" is not a usable file:// URL`, { cause });
    }
    return { kind: 'file', path, field };
  }
  if (!isAbsolute(text)) {
    throw new InvalidParameterValue(name, `must be an absolute file path or an http(s) URL, got "${text}"`);
  }
  return { kind: 'file', path: text, field };
}

/** Describes a source for logs and messages (`driver_info.keylime_allowlist (https://…)`). */
export function describeSource(source: DocumentSource): string {
  return `driver_info.${source.field} (${source.kind === 'url' ? source.url : source.path})`;
}
