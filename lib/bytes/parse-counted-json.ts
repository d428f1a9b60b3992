import { jsonTextExcess } from './json-text-bound.js';

/** The caller's own typed errors for `parseCountedJson`: each caller keeps its error class and wording. */
export interface CountedJsonErrors {
  /** For a text past the bound, given `jsonTextExcess`'s reason (`holds more than N JSON values`, `nested deeper than 32 levels`). */
  readonly excess: (reason: string) => Error;
  /** For a text within the bound that JSON.parse refuses, given JSON.parse's error. */
  readonly notJson: (error: Error) => Error;
}

/**
 * `JSON.parse` of a text that comes as a string member of a request (a policy, a refstate, metadata),
 * where the body's own value bound does not reach: its JSON values are counted first (`jsonTextExcess`,
 * at most `maxValues`, `MAX_JSON_DEPTH` levels), so a hostile text is refused before JSON.parse builds
 * any value.
 *
 * @throws what `errors.excess` gives when the text is past the bound, or `errors.notJson` when it is not JSON.
 */
export function parseCountedJson(text: string, maxValues: number, errors: CountedJsonErrors): unknown {
  const excess = jsonTextExcess(text, maxValues);
  if (excess !== undefined) {
    throw errors.excess(excess);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw errors.notJson(error as Error);
  }
}
