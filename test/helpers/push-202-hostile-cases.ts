import type { EvidenceBody } from '../../lib/verifier/push/push-dtos.js';
import type { PushAttestation } from '../../lib/verifier/push/push-repository.js';

/** One input of the 202's builder. */
export interface AcknowledgedCase {
  readonly attestation: PushAttestation;
  readonly body: EvidenceBody;
  readonly quoteInterval: number;
}

/** Strings JSON must escape or that JSON.stringify treats specially: quotes, backslashes, controls, separators, lone surrogates. */
const STRINGS = ['', 'sha256', 'a"b', 'back\\slash', '\u0000\u001f\n\t', '\u2028\u2029', '\ud800', '\udc00x', '😀', '</script>', 'ü€', '\u007f', 'x'.repeat(300), 'AQIDBA==', '__proto__'];
/** Values of any JSON type and of none (undefined, a function: left out of objects), a Date (its `toJSON`), numbers JSON writes as null. */
const ODD = [undefined, null, 0, -0, 1.5, NaN, Infinity, 1e21, true, false, [], {}, [undefined, () => 1, 2], new Date(0), () => 1, { toJSON: () => 'custom' }];
const TYPES = ['tpm_quote', 'ima_log', 'uefi_log', 'other'];

/**
 * `count` inputs of `evidenceAcknowledgedText`, each `base` (an attestation and a body that pass) with
 * some fields replaced by hostile values, from a fixed seed: the same cases on every run.
 */
export function* hostileAcknowledgedCases(count: number, base: PushAttestation, baseBody: EvidenceBody): Generator<AcknowledgedCase> {
  let seed = 0x2f6b_1a3d;
  const random = (): number => {
    // xorshift32: enough spread for choosing cases, reproducible.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  const maybe = (p: number): boolean => random() < p;
  const text = (): string => (maybe(0.5) ? pick(STRINGS) : pick(STRINGS) + pick(STRINGS));
  const anything = (depth = 0): unknown => {
    const roll = random();
    if (roll < 0.35) return text();
    if (roll < 0.6 || depth > 2) return pick(ODD);
    if (roll < 0.8) return Array.from({ length: Math.floor(random() * 4) }, () => anything(depth + 1));
    return objectOf(depth + 1);
  };
  const objectOf = (depth: number): Record<string, unknown> => {
    // Integer-like keys ('10' before '2') come first in JSON.stringify's order whatever the insertion order.
    const keys = ['b', '10', '2', 'a"k', '__proto__', 'sha256', '😀'];
    const result: Record<string, unknown> = {};
    for (let i = Math.floor(random() * 4); i > 0; i -= 1) Object.defineProperty(result, pick(keys), { value: anything(depth), enumerable: true, writable: true, configurable: true });
    return result;
  };
  const date = (): Date => new Date(pick([0, 1_700_000_000_000, -62_198_755_200_000, 253_402_300_799_999, 8.64e15]));
  for (let n = 0; n < count; n += 1) {
    const choice = { ...base.choice } as Record<string, unknown>;
    if (maybe(0.3)) choice['signatureScheme'] = maybe(0.8) ? text() : undefined;
    if (maybe(0.3)) choice['hashAlg'] = maybe(0.8) ? text() : undefined;
    if (maybe(0.3)) choice['selectedSubjects'] = maybe(0.8) ? objectOf(1) : anything();
    if (maybe(0.3)) choice['certificationKey'] = maybe(0.8) ? objectOf(1) : anything();
    if (maybe(0.3)) choice['uefiLog'] = maybe(0.5);
    if (maybe(0.4)) choice['imaStartingOffset'] = pick([null, undefined, 0, 5, NaN, -0, 2 ** 40]);
    if (maybe(0.3)) choice['imaEntryCount'] = pick([undefined, null, 0, 7, NaN]);
    if (maybe(0.3)) choice['pcrs'] = pick([[], [0, 10], undefined]);
    if (maybe(0.5)) {
      choice['capabilities'] = maybe(0.2)
        ? pick([undefined, null, {}])
        : Object.fromEntries(TYPES.filter(() => maybe(0.6)).map((type) => [type, maybe(0.2) ? pick([undefined, null]) : objectOf(1)]));
    }
    const systemInfo = maybe(0.7) ? { boot_time: maybe(0.7) ? text() : anything() } : maybe(0.5) ? {} : { other: text() };
    const attestation = {
      ...base,
      index: maybe(0.3) ? pick([0, 7, 2 ** 31, -1, 1e21, NaN]) : base.index,
      stage: maybe(0.2) ? (pick([text(), undefined]) as PushAttestation['stage']) : base.stage,
      challenge: maybe(0.2) ? text() : base.challenge,
      choice: choice as unknown as PushAttestation['choice'],
      systemInfo,
      capabilitiesReceivedAt: maybe(0.2) ? date() : base.capabilitiesReceivedAt,
      challengesExpireAt: maybe(0.2) ? date() : base.challengesExpireAt,
      evidenceReceivedAt: maybe(0.3) ? (pick([null, date()]) as Date | null) : base.evidenceReceivedAt,
    };
    const collected = maybe(0.3)
      ? baseBody.data.attributes.evidence_collected
      : Array.from({ length: Math.floor(random() * 5) }, () => ({
          evidence_class: pick(['certification', 'log']),
          evidence_type: pick(TYPES),
          data: maybe(0.05)
            ? undefined
            : Object.fromEntries(
                (['message', 'signature', 'subject_data', 'entries', 'entry_count'] as const)
                  .filter(() => maybe(0.6))
                  .map((field) => [field, field === 'entry_count' ? pick([0, 3, undefined, NaN]) : field === 'entries' && maybe(0.5) ? 'a\nb\nc\n'.slice(0, Math.floor(random() * 7)) : text()]),
              ),
        }));
    const body = { data: { type: 'attestation', attributes: { evidence_collected: collected } } } as unknown as EvidenceBody;
    yield { attestation, body, quoteInterval: maybe(0.7) ? 2 : pick([2.5, 0.2, 0, -5, NaN, Infinity, 1e300]) };
  }
}
