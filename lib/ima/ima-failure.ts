/**
 * Failures found while checking a measurement list, with Keylime's event ids (`keylime/failure.py`:
 * `<component>.<sub-components>.<event>`, including Keylime's own spellings `validator` and
 * `qoute_validation`) so that logs, webhooks and severity policies written for Keylime keep working.
 */
export const IMA_EVENTS = {
  /** A parsed line's path is not in the policy (nor excluded). */
  notInAllowlist: 'ima.validation.ima-ng.not_in_allowlist',
  /** The path is in the policy, the digest is not. */
  runtimePolicyHash: 'ima.validation.ima-ng.runtime_policy_hash',
  /** An `ima-sig` entry without a valid signature, checked with keyrings but no policy. */
  invalidSignature: 'ima.validator.ima-sig.invalid_signature',
  /** The template hash does not match the template data. */
  imaHash: 'ima.validation.ima_hash',
  /** The entry names a PCR other than 10. */
  imaPcr: 'ima.validation.ima_pcr',
  /** A violation (ToMToU / open-writers) entry, reported only when asked for. */
  tomtou: 'ima.validation.tomtou',
  /** No prefix of the list replays to the quoted PCR 10. */
  pcrMismatch: 'ima.pcr_mismatch',
  /** The quote still lags entries the previous round already saw in the log. */
  quoteProgress: 'ima.quote_progress',
  /** An `ima-buf` key of a type IMA cannot use. */
  invalidKey: 'ima.invalid_key',
  /** A line that is not an IMA entry we can parse. */
  parserEntry: 'ima.parser.entry',
  /**
   * ironlime's own: running the policy's exclude rules over this round's paths would pass the
   * round's match allowance (lib/python-regex/match-allowance.ts), so the list was not judged.
   */
  matchAllowanceExceeded: 'ima.policy.match_allowance_exceeded',
  /** The node answered from another entry than the one asked for (and not from 0). */
  invalidEntryNumber: 'qoute_validation.invalid_ima_entry_nb',
} as const;

export type ImaEventId = (typeof IMA_EVENTS)[keyof typeof IMA_EVENTS];

export interface ImaFailure {
  /** 1-based line of the entry in the whole list; 0 for failures of the list as a whole. */
  readonly line: number;
  /** Path (or buffer/keyring name) of the entry; "" when there is none. */
  readonly path: string;
  readonly eventId: ImaEventId;
  /** Keylime-style context: always a `message`, plus details (`got`, `expected`, …). */
  readonly context: { readonly message: string; readonly [key: string]: unknown };
}
