import type { KeyObject } from 'node:crypto';
import type { CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import type { ImaKeyring } from '../ima/ima-keyring.js';
import type { ImaReplayState } from '../ima/ima-replay-state.js';
import { POLICY_GENERATOR } from '../ima/runtime-policy.js';
import type { QuoteHashAlg } from './algorithms.js';
import { storeClockInfo, type StoredClockInfo } from './internal/clock-check.js';
import { toHex } from './internal/digest.js';
import type { FailureEvent } from './internal/failure.js';
import { checkIma, type ImaClaims } from './internal/ima-check.js';
import { checkMbLogStepwise, type MbClaims, type MbRoundInput } from './internal/mb-check.js';
import { DATA_PCR, IMA_PCR } from '../tpm/keylime-profile.js';
import { checkDataPcr, checkMissingPcrs, checkPolicyPcr, unusedPcrEvent } from './pcr-checks.js';
import { checkQuote } from './internal/quote-check.js';
import type { TpmPolicy } from './tpm-policy.js';
import { MatchAllowance } from '../python-regex/match-allowance.js';
import type { SignatureVerdict } from '../tpm/signature-verdict.js';
import type { QuoteVerified } from '../tpm/verify-quote.js';
import type { RememberedBootLog } from './boot-log-memo.js';
import { reuseBootLog } from './internal/boot-log-reuse.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

/** What a round established, beyond pass/fail. */
export interface AttestationClaims {
  /** The verified quote, or null when it did not verify. */
  readonly quote: {
    readonly hashAlg: string;
    /** Verified PCR values of the quote's bank, lowercase hex by PCR number (with the remembered PCR 0 in a round asked without it: `reuseBootLog`). */
    readonly pcrs: Readonly<Record<string, string>>;
    readonly clockInfo: StoredClockInfo;
    readonly firmwareVersion: string;
  } | null;
  /** Null when the IMA list was not replayed this round. */
  readonly ima: ImaClaims | null;
  /** Null when no boot log was sent or it did not parse. */
  readonly measuredBoot: MbClaims | null;
}

/** The inputs shared by the pull loop, one-shot evidence and every other path. */
export interface RoundInput {
  readonly quote: string;
  readonly nonce: Uint8Array;
  /** Other qualifying data accepted as well (push: the challenge's base64 text). */
  readonly alternativeNonce?: Uint8Array;
  readonly hashAlg: QuoteHashAlg;
  /** Pin the signature scheme (pull: the agent's `sign_alg`); omit to accept what the AK allows. */
  readonly signAlg?: string;
  readonly akTpm: string | Uint8Array | KeyObject;
  readonly tpmPolicy: TpmPolicy;
  /** NK public key PCR 16 must bind; null skips the check (one-shot evidence, push mode). */
  readonly bindPublicKey: string | null;
  /** Previous clock info; undefined skips the clock check, null is "first quote". */
  readonly previousClock: StoredClockInfo | null | undefined;
  readonly ima: {
    readonly listText: string | null | undefined;
    readonly startEntry: number;
    readonly state: ImaReplayState;
    /** `skip`: do not replay this round (pre-checks found the list unusable). */
    readonly replay: boolean;
  };
  readonly runtimePolicy: CompiledRuntimePolicy | null;
  readonly imaKeyring: ImaKeyring | undefined;
  readonly failOnTomtou: boolean;
  readonly mb: MbRoundInput;
  /** The AK signature verified ahead (`verifyQuoteSignatureAhead`); checked against this quote before use. */
  readonly signatureVerdict?: SignatureVerdict;
  /**
   * A boot log verified earlier in this TPM boot cycle, for a quote asked without PCR 0 (and so without
   * a log): `mb.eventLog` is ignored, and the round is judged with this log and the remembered PCR 0
   * when the verified quote allows it (`reuseBootLog`), or not judged at all.
   */
  readonly rememberedBoot?: RememberedBootLog;
  /**
   * Nanoseconds this round may spend running the policies' patterns (the runtime policy's excludes,
   * the refstate's `kernel_cmdline`; lib/python-regex/match-allowance.ts); absent: not bounded. Passing
   * it fails the round (`ima.policy.match_allowance_exceeded`, `measured_boot.policy.match_allowance_exceeded`).
   */
  readonly matchAllowanceNs?: number | undefined;
}

/** A quote the remembered boot log cannot stand for (`RoundInput.rememberedBoot`): nothing was judged. */
export interface BootLogNotReusable {
  readonly verdict: 'inconclusive';
  readonly reason: string;
}

export interface RoundResult {
  /** In Keylime's order: quote, boot-log parse, PCR 16, IMA, boot PCRs, tpm_policy, missing PCRs, boot policy. */
  readonly events: readonly FailureEvent[];
  /** True when the quote verified (signature, nonce, digest, clock). */
  readonly quoteVerified: boolean;
  /** The IMA state for the next round. */
  readonly imaState: ImaReplayState;
  readonly claims: AttestationClaims;
}

/**
 * The checks of one attestation round after the reply's pre-checks: Keylime's `check_quote` +
 * `check_pcrs` (spec §7.2–§7.8). Pure; every entry point (pull loop, one-shot evidence) calls this,
 * so the same evidence gets the same events wherever it arrives.
 */
export function runAttestationChecks(input: RoundInput & { readonly rememberedBoot?: undefined }): RoundResult;
export function runAttestationChecks(input: RoundInput): RoundResult | BootLogNotReusable;
export function runAttestationChecks(input: RoundInput): RoundResult | BootLogNotReusable {
  return finish(runAttestationChecksStepwise(input));
}

/**
 * `runAttestationChecks`, pausing between chunks of the boot log's events and of the IMA list's lines
 * (`Stepwise`): the same result.
 */
export function* runAttestationChecksStepwise(input: RoundInput): Stepwise<RoundResult | BootLogNotReusable> {
  const quote = checkQuote({
    quote: input.quote,
    akTpm: input.akTpm,
    nonce: input.nonce,
    ...(input.alternativeNonce === undefined ? {} : { alternativeNonce: input.alternativeNonce }),
    hashAlg: input.hashAlg,
    ...(input.signAlg === undefined ? {} : { signAlg: input.signAlg }),
    ...(input.previousClock === undefined ? {} : { previousClock: input.previousClock }),
    ...(input.signatureVerdict === undefined ? {} : { signatureVerdict: input.signatureVerdict }),
  });
  if (!quote.ok) {
    return {
      events: [quote.event],
      quoteVerified: false,
      imaState: input.ima.state,
      claims: { quote: null, ima: null, measuredBoot: null },
    };
  }
  let { pcrs } = quote;
  let mbInput = input.mb;
  if (input.rememberedBoot !== undefined) {
    const reuse = reuseBootLog(input.rememberedBoot, quote.verified, pcrs, input.hashAlg);
    if (!reuse.usable) {
      return { verdict: 'inconclusive', reason: reuse.reason };
    }
    pcrs = reuse.pcrs;
    mbInput = { ...input.mb, eventLog: input.rememberedBoot.eventLog };
  }
  const events: FailureEvent[] = [];
  const allowance = input.matchAllowanceNs === undefined ? undefined : new MatchAllowance(input.matchAllowanceNs);
  const mbCheck = { ...mbInput, pcrs, hashAlg: input.hashAlg, allowance };
  // The usual round, a memo hit, makes no generator; a miss is checked a step at a time.
  const mb = mbInput.memo?.recall(mbCheck) ?? (yield* checkMbLogStepwise(mbCheck));
  append(events, mb.parseEvents);
  if (input.bindPublicKey !== null) {
    events.push(...checkDataPcr(pcrs, input.hashAlg, input.bindPublicKey));
  }
  let imaState = input.ima.state;
  let imaClaims: ImaClaims | null = null;
  const pcr10 = pcrs.get(IMA_PCR);
  if (pcr10 !== undefined) {
    if (input.ima.listText === null || input.ima.listText === undefined) {
      events.push(unusedPcrEvent(IMA_PCR, 'IMA'));
    } else if (input.ima.replay) {
      const ima = yield* checkIma({
        listText: input.ima.listText,
        startEntry: input.ima.startEntry,
        state: input.ima.state,
        quotedPcr10: pcr10,
        hashAlg: input.hashAlg,
        policy: input.runtimePolicy,
        keyring: input.imaKeyring,
        bootAggregates: mb.bootAggregates,
        failOnTomtou: input.failOnTomtou,
        allowance,
      });
      append(events, ima.events);
      imaState = ima.nextState;
      imaClaims = ima.claims;
    }
  }
  append(events, mb.pcrEvents);
  // Only a quoted PCR that tpm_policy lists can fail its value check: walk the policy's few PCRs, not every quoted one.
  const checked = [...input.tpmPolicy.pcrs.keys()].filter((pcr) => pcr !== IMA_PCR && pcr !== DATA_PCR && pcrs.has(pcr)).sort((a, b) => a - b);
  for (const pcr of checked) {
    events.push(...checkPolicyPcr(pcr, pcrs.get(pcr) as Uint8Array, input.tpmPolicy));
  }
  events.push(...checkMissingPcrs(pcrs, input.tpmPolicy, requiresPcr10(input.runtimePolicy, input.imaKeyring) ? [IMA_PCR] : []));
  append(events, mb.policyEvents);
  const verified = quote.verified;
  return {
    events,
    quoteVerified: true,
    imaState,
    claims: {
      quote: quoteClaims(verified, pcrs),
      ima: imaClaims,
      measuredBoot: mb.claims,
    },
  };
}

/**
 * The verified quote's claims. The hex of its PCRs is worked out on first read, by a getter, so the
 * claims keep their plain shape for readers, spreads and JSON: one-shot evidence and the broker read
 * it, the pull loop never does.
 */
function quoteClaims(verified: QuoteVerified, pcrs: ReadonlyMap<number, Uint8Array>): NonNullable<AttestationClaims['quote']> {
  let hex: Readonly<Record<string, string>> | undefined;
  return {
    hashAlg: verified.hashAlg,
    get pcrs() {
      return (hex ??= Object.fromEntries([...pcrs].sort(([a], [b]) => a - b).map(([pcr, value]) => [String(pcr), toHex(value)])));
    },
    clockInfo: storeClockInfo(verified.clockInfo),
    firmwareVersion: verified.attest.firmwareVersion.toString(),
  };
}

/**
 * Whether the quote must cover PCR 10: a runtime policy is enrolled and it is not Keylime's empty
 * one (generator `EmptyAllowList` and nothing listed), or IMA signature keys are. Keylime's
 * `generator > EmptyAllowList` would let a node leave PCR 10, and so its whole IMA list, out of the
 * quote under a policy without `meta.generator` (Unknown, as Keylime's own test policies are
 * written), one marked EmptyAllowList that lists digests, excludes, keyrings or keys all the same,
 * or with `ima_sign_verification_keys` (checked against Keylime's empty policy when no other is
 * enrolled).
 */
export function requiresPcr10(policy: CompiledRuntimePolicy | null, keyring?: ImaKeyring): boolean {
  if (keyring !== undefined) {
    return true;
  }
  return policy !== null && (policy.policy.meta.generator !== POLICY_GENERATOR.EmptyAllowList || !listsNothing(policy.policy));
}

function listsNothing(policy: CompiledRuntimePolicy['policy']): boolean {
  const empty = (map: Record<string, unknown>): boolean => Object.keys(map).length === 0;
  return empty(policy.digests) && empty(policy.keyrings) && empty(policy['ima-buf']) && policy.excludes.length === 0 && policy['verification-keys'] === '';
}

/**
 * `more` added to `events` one by one: an IMA list or a boot log makes up to one event per line or
 * entry, and `push(...more)` passes them all as arguments, which overflows the stack past some
 * 120,000 (a RangeError: the round failed as a verifier exception, its real events lost).
 */
function append(events: FailureEvent[], more: readonly FailureEvent[]): void {
  for (const event of more) events.push(event);
}
