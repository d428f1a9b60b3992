import { policyJsonExcess } from '../../bytes/json-text-bound.js';
import { RuntimePolicyError } from './runtime-policy-error.js';

/**
 * `JSON.parse` of a runtime policy's text, a DSSE envelope or an IMA keyring, once its JSON values were
 * counted within `policyJsonValueBound` of its length (lib/bytes/json-text-bound.ts): such a text comes
 * in a request's string member (`POST /verify/evidence` takes one of 32 MiB unauthenticated), where
 * the body's own value bound does not reach.
 *
 * @throws RuntimePolicyError naming `field` when the text holds too many values, is too deep, or is not JSON.
 */
export function parsePolicyJson(text: string, field: string): unknown {
  const excess = policyJsonExcess(text);
  if (excess !== undefined) {
    throw new RuntimePolicyError(field, excess);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RuntimePolicyError(field, `is not valid JSON: ${(error as Error).message}`);
  }
}
