import { createHash, hash } from 'node:crypto';
import type { BootEvent } from '../boot-events.js';
import { keyVariableMeasurementsStepwise, mokEvents, type KeyVariableMeasurement } from './boot-components.js';
import { secureBootState } from '../boot-state.js';
import type { MbRefstate, RefstateDigest, RefstateKey } from '../mb-refstate.js';
import { shimValidationFindings } from './policy-shim-validation.js';
import { digestIs, digestSet, inDigestSet, LISTED_EVENTS, listedNote, refHex, type PolicyFinding } from './policy-finding.js';
import type { EfiSignature } from './uefi-variable.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';
import { pickInSteps } from './events-per-step.js';
import { configVariableMeasurements } from './secure-boot-variables.js';
import type { Stepwise } from '../../ima/stepwise.js';

/**
 * Secure Boot checks of the `example` policy: the SecureBoot variable, PK/KEK/db (every key in the
 * log must be allowed), dbx (every required revocation must be present) and shim's MOK lists.
 * Variable contents are used only when their digest proves them (`dataMatchesDigest`). Pauses between
 * chunks of events (`Stepwise`).
 */
export function* secureBootFindings(events: readonly BootEvent[], refstate: MbRefstate): Stepwise<PolicyFinding[]> {
  // The events each check reads, picked a chunk at a time: the checks below read these alone, and
  // pick them again from these (the same events), however many a hostile log holds.
  const configuration = yield* pickInSteps(events, (chunk) => configVariableMeasurements(chunk).map((m) => m.event));
  const pcr14 = yield* pickInSteps(events, (chunk) => chunk.filter((e) => e.pcrIndex === 14));
  const shim = yield* pickInSteps(events, (chunk) => shimValidationFindings(chunk, refstate.has_secureboot));
  const findings: PolicyFinding[] = [];
  const sb = secureBootState(configuration);
  if (sb.enabled === null) {
    findings.push({ component: 'secure_boot', reason: sb.reason ?? 'Secure Boot state unknown', expected: refstate.has_secureboot, actual: null });
  } else if (sb.event !== null && !sb.event.dataMatchesDigest) {
    findings.push({ component: 'secure_boot', reason: 'the SecureBoot variable event does not match its digest', events: [sb.event.sequence] });
  } else if (sb.enabled !== refstate.has_secureboot) {
    findings.push({
      component: 'secure_boot',
      reason: `Secure Boot is ${sb.enabled ? 'enabled' : 'disabled'}, the refstate expects it ${refstate.has_secureboot ? 'enabled' : 'disabled'}`,
      expected: refstate.has_secureboot,
      actual: sb.enabled,
      events: sb.event === null ? [] : [sb.event.sequence],
    });
  }
  const measured = yield* keyVariableMeasurementsStepwise(configuration);
  // Appended one by one, not spread into `push`: a key variable the node extends itself may hold some
  // 260,000 signatures under the log's size bound, a finding each, and 150,000 arguments overflow the stack.
  for (const more of [
    allowedKeyFindings('PK', 'pk', measured.PK, refstate.pk, refstate.has_secureboot),
    allowedKeyFindings('KEK', 'kek', measured.KEK, refstate.kek, refstate.has_secureboot),
    allowedKeyFindings('db', 'db', measured.db, refstate.db, refstate.has_secureboot),
    requiredRevocations(measured.dbx, refstate.dbx, refstate.has_secureboot),
    mokFindings(pcr14, refstate),
    shim,
  ]) {
    for (const finding of more) findings.push(finding);
  }
  return findings;
}


type Measurements = readonly KeyVariableMeasurement[];

/** The one trustworthy measurement of a key variable, or the findings that prevent using it. */
function single(name: string, component: string, measured: Measurements, required: boolean) {
  const findings: PolicyFinding[] = [];
  if (measured.length === 0) {
    if (required) {
      findings.push({ component, reason: `${name} is not measured in PCR 7, although Secure Boot is expected` });
    }
    return { signatures: null, findings };
  }
  const events = measured.map((m) => m.event.sequence);
  const [m] = measured as [Measurements[number]];
  if (measured.length > 1) {
    findings.push({ component, reason: `${name} is measured ${measured.length} times`, events });
  } else if (!m.event.dataMatchesDigest) {
    findings.push({ component, reason: `the ${name} event does not match its digest`, events });
  } else if (m.signatures === null) {
    findings.push({ component, reason: `${name} is not a list of EFI_SIGNATURE_LISTs: ${m.error ?? ''}`, events });
  }
  return { signatures: findings.length === 0 ? m.signatures : null, findings };
}

/** Keylime `KeySubset`: every signature in the variable is one the refstate allows. */
function allowedKeyFindings(name: string, component: string, measured: Measurements, allowed: readonly RefstateKey[], secureBoot: boolean): PolicyFinding[] {
  if (!secureBoot && allowed.length === 0 && measured.length <= 1) {
    return [];
  }
  const { signatures, findings } = single(name, component, measured, secureBoot);
  const allowedKeys = keyIndex(allowed.map(keyBytes));
  const events = (): number[] => measured.map((m) => m.event.sequence);
  // A finding for each of the first keys not allowed, then their count: a variable the node extends
  // itself may hold some 260,000 signatures under the log's size bound, and a finding (then a failure)
  // for each held the verifier's event loop for seconds, most of it collecting their garbage.
  let unlisted = 0;
  for (const sig of signatures ?? []) {
    if (contains(allowedKeys, sig)) continue;
    if (findings.length >= LISTED_EVENTS) {
      unlisted += 1;
      continue;
    }
    findings.push({
      component,
      reason: `${name} holds a key the refstate does not allow`,
      expected: `one of ${allowed.length} ${component} key(s)`,
      actual: { SignatureOwner: sig.signatureOwner, SignatureData: refHex(sig.signatureData) },
      events: events(),
    });
  }
  if (unlisted > 0) {
    findings.push({ component, reason: `${name} holds ${unlisted} more key(s) the refstate does not allow (the first ${LISTED_EVENTS} listed)`, events: events() });
  }
  return findings;
}

/** Keylime `KeySuperset`: dbx holds every revocation the refstate requires. */
function requiredRevocations(measured: Measurements, required: readonly RefstateKey[], secureBoot: boolean): PolicyFinding[] {
  if (!secureBoot && required.length === 0 && measured.length <= 1) {
    return [];
  }
  const { signatures, findings } = single('dbx', 'dbx', measured, true);
  if (signatures === null) {
    return findings;
  }
  const present = keyIndex(signatures.map((sig) => ({ owner: sig.signatureOwner, data: Buffer.from(sig.signatureData) })));
  const missing = required.filter((key) => {
    const bytes = keyBytes(key);
    return !contains(present, { signatureOwner: bytes.owner, signatureData: bytes.data });
  });
  if (missing.length > 0) {
    findings.push({
      component: 'dbx',
      reason: `dbx lacks ${missing.length} revocation(s) the refstate requires`,
      expected: missing,
      actual: `${signatures.length} dbx entries`,
      events: measured.map((m) => m.event.sequence),
    });
  }
  return findings;
}

/**
 * PCR 14 MokList / MokListX digests must be allowed. The name is the event's text, which its digest
 * (of the list) does not cover: a rogue MokList renamed MokListTrusted would escape the check. shim
 * measures each list once, so each name may appear once, and a list whose digests the refstate names
 * must be measured. Keylime accepts any MokListTrusted; here it must be what shim measures, or a
 * rogue MokList renamed so and a good one extended at runtime would pass on an older shim, which
 * measures no MokListTrusted.
 */
function mokFindings(events: readonly BootEvent[], refstate: MbRefstate): PolicyFinding[] {
  const mok = mokEvents(events);
  return [
    ...mokListFindings('mokdig', 'MokList', mok.MokList, refstate.mokdig),
    ...mokListFindings('mokxdig', 'MokListX', mok.MokListX, refstate.mokxdig),
    ...trustedMokFindings(mok.MokListTrusted),
    ...stateByteFindings('MokPolicy', mok.MokPolicy),
    ...stateByteFindings('MokSBState', mok.MokSBState),
  ];
}

/**
 * MokPolicy (bit 0: MOK_POLICY_REQUIRE_NX) and MokSBState (1: shim's validation disabled, judged on
 * its PCR 7 record, `shimValidationFindings`) are one-byte variables shim logs into PCR 14 once
 * each, when they are set. The digest must be of one byte 0 or 1, which no MOK list is: a rogue
 * MokList renamed so, with a good one extended at runtime, fails.
 */
const STATE_BYTE_DIGESTS = [0, 1].map((b) => refHex(createHash('sha256').update(Uint8Array.of(b)).digest()));

function stateByteFindings(name: string, records: readonly BootEvent[]): PolicyFinding[] {
  const [only] = records;
  if (records.length > 1) {
    return [measuredTimes('mokdig', name, records)];
  }
  if (only === undefined || STATE_BYTE_DIGESTS.some((d) => digestIs(only, d))) {
    return [];
  }
  return [{
    component: 'mokdig',
    reason: `${name} is not the one byte (0 or 1) shim measures for it`,
    expected: STATE_BYTE_DIGESTS.map((sha256) => ({ sha256 })),
    actual: { sha256: refHex(only.digest) },
    events: [only.sequence],
  }];
}

/**
 * A shim that knows MokListTrusted measures it as the one byte 1 when MOK keys are trusted for the
 * kernel (the variable unset), and does not measure it otherwise.
 */
const TRUSTED_MOK_DIGEST = refHex(createHash('sha256').update(Uint8Array.of(1)).digest());

function trustedMokFindings(list: readonly BootEvent[]): PolicyFinding[] {
  const [only] = list;
  if (list.length > 1) {
    return [measuredTimes('mokdig', 'MokListTrusted', list)];
  }
  if (only === undefined || digestIs(only, TRUSTED_MOK_DIGEST)) {
    return [];
  }
  return [{
    component: 'mokdig',
    reason: 'MokListTrusted is not the one byte 1 shim measures when MOK keys are trusted',
    expected: [{ sha256: TRUSTED_MOK_DIGEST }],
    actual: { sha256: refHex(only.digest) },
    events: [only.sequence],
  }];
}

/** One MOK list: measured once at most (and once when the refstate lists digests), its digest allowed. */
function mokListFindings(component: string, name: string, list: readonly BootEvent[], allowed: readonly RefstateDigest[]): PolicyFinding[] {
  const [only] = list;
  if (list.length > 1) {
    return [measuredTimes(component, name, list)];
  }
  if (only === undefined) {
    return allowed.length > 0 ? [{ component, reason: `${name} is not measured in PCR 14, although the refstate lists its digests` }] : [];
  }
  if (inDigestSet(only, digestSet(allowed))) {
    return [];
  }
  return [{ component, reason: `${name} digest is not in the refstate`, expected: allowed, actual: { sha256: refHex(only.digest) }, events: [only.sequence] }];
}

function measuredTimes(component: string, name: string, list: readonly BootEvent[]): PolicyFinding {
  return { component, reason: `${name} is measured ${list.length} times${listedNote(list)}`, events: list.slice(0, LISTED_EVENTS).map((e) => e.sequence) };
}

interface KeyBytes {
  readonly owner: string;
  readonly data: Buffer;
}

function keyBytes(key: RefstateKey): KeyBytes {
  return { owner: key.SignatureOwner, data: Buffer.from(key.SignatureData.slice(2), 'hex') };
}

/**
 * Keys by owner and SHA-256 of their data. These are public values (certificates, image hashes), so
 * finding the candidate through a map leaks nothing; the match itself is still a constant-time
 * comparison of the full data. A key already indexed is not added again: a log's dbx may repeat one
 * signature thousands of times, and every look-up then compares against one candidate, not all.
 */
function keyIndex(keys: readonly KeyBytes[]): Map<string, KeyBytes[]> {
  const index = new Map<string, KeyBytes[]>();
  for (const key of keys) {
    const id = keyId(key.owner, key.data);
    const candidates = index.get(id);
    if (candidates === undefined) {
      index.set(id, [key]);
    } else if (!candidates.some((known) => bytesEqual(known.data, key.data))) {
      candidates.push(key);
    }
  }
  return index;
}

function contains(index: ReadonlyMap<string, readonly KeyBytes[]>, sig: EfiSignature): boolean {
  const candidates = index.get(keyId(sig.signatureOwner, sig.signatureData)) ?? [];
  return candidates.some((key) => bytesEqual(key.data, sig.signatureData));
}

/**
 * Data up to the size of a SHA-512 digest (dbx hashes, a hostile node's empty signatures) is its own
 * hex, with no hash to make: a `createHash` per signature was most of the cost of a db of 240,000.
 * Longer data (certificates) is its SHA-256, one-shot as a latin1 string: no Hash object or hex per key.
 */
const SHORT_KEY_DATA = 64;

function keyId(owner: string, data: Uint8Array): string {
  return data.length <= SHORT_KEY_DATA
    ? `${owner}=${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex')}`
    : `${owner}:${hash('sha256', data, 'binary')}`;
}
