import { policyJsonValueBound } from '../../bytes/json-text-bound.js';
import { parseCountedJson } from '../../bytes/parse-counted-json.js';
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
  return parseCountedJson(text, policyJsonValueBound(text.length), {
    excess: (reason) => new RuntimePolicyError(field, reason),
    notJson: (error) => new RuntimePolicyError(field, `is not valid JSON: ${error.message}`),
  });
}
