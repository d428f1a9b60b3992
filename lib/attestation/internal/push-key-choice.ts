import type { AgentPolicies } from '../agent-policies.js';
import { isQuoteHashAlg } from '../algorithms.js';
import type { OfferedKey, PushCapabilities } from '../push-decision.js';

/** The certification key a push quote is asked of, with the hash and scheme chosen for it. */
export interface ChosenKey {
  readonly key: OfferedKey;
  readonly hashAlg: string;
  readonly signatureScheme: string;
}

/**
 * Keylime's key choice (`tpm_engine.py` `_certification_key_choices`): among the offered keys whose
 * allowable lists admit a hash and a scheme of the agent's accept lists that the agent also offers,
 * the enrolled AK, then one named "ak", then the first. Undefined when no key fits. The key is only
 * repeated to the agent: the quote is verified against the enrolled `ak_tpm` whatever is chosen.
 */
export function chooseCertificationKey(quote: PushCapabilities['quote'], policies: AgentPolicies, akTpm: string): ChosenKey | undefined {
  const hashFor = (key: OfferedKey): string | undefined =>
    policies.acceptTpmHashAlgs.find((h) => isQuoteHashAlg(h) && quote.hashAlgorithms.includes(h) && (key.allowableHashAlgorithms?.includes(h) ?? true));
  const schemeFor = (key: OfferedKey): string | undefined =>
    policies.acceptTpmSigningAlgs.find((s) => quote.signatureSchemes.includes(s) && (key.allowableSignatureSchemes?.includes(s) ?? true));
  const fitting = quote.certificationKeys.filter((k) => hashFor(k) !== undefined && schemeFor(k) !== undefined);
  const enrolled = enrolledAkForms(akTpm);
  const key = fitting.find((k) => k.public !== undefined && enrolled.includes(k.public)) ?? fitting.find((k) => k.serverIdentifier === 'ak') ?? fitting[0];
  const hashAlg = key === undefined ? undefined : hashFor(key);
  const signatureScheme = key === undefined ? undefined : schemeFor(key);
  return key === undefined || hashAlg === undefined || signatureScheme === undefined ? undefined : { key, hashAlg, signatureScheme };
}

/**
 * The capabilities to keep with the attestation and repeat in the 202: as received, but the quote's
 * `certification_keys` reduced to the chosen one. An agent may offer several keys of up to 16 KiB
 * each, and phase 1 is not paced while evidence is awaited, so keeping them all would let one agent
 * grow its rows (and `GET …/attestations`) to the body limit per request; one key still parses as
 * the Rust agent's list.
 */
export function capabilitiesToKeep(received: PushCapabilities['received'], chosen: OfferedKey): PushCapabilities['received'] {
  const quote = received['tpm_quote'];
  return quote === undefined ? received : { ...received, tpm_quote: { ...quote, certification_keys: [chosen.raw] } };
}

/**
 * The enrolled AK as a certification key's `public` may carry it: the registrar's base64 TPM2B_PUBLIC,
 * or the TPMT_PUBLIC inside it (a u16 size first, TPM 2.0 Part 2 §12.2.5), which the Rust agent sends.
 */
function enrolledAkForms(akTpm: string): readonly string[] {
  const bytes = Buffer.from(akTpm, 'base64');
  return bytes.length > 2 ? [akTpm, bytes.subarray(2).toString('base64')] : [akTpm];
}
