import { pushAttestationWaitSeconds } from '../../attestation/freshness.js';
import { countLines, type PushChoice } from '../../attestation/push-decision.js';
import type { EvidenceBody, EvidenceCollected } from './push-dtos.js';
import type { PushAttestation } from './push-repository.js';
import { POP, type SessionProofOutcome } from './push-sessions.js';

// The JSON:API documents the push routes answer with (keylime-protocol §10), shaped so that the Rust
// push agent's structs (rust-keylime `keylime/src/structures/`) read them.

/**
 * The attributes of a session PATCH reply, pass or fail: the Rust agent reads them into a struct that
 * requires `authentication[]` and the three times (RFC 3339); `token` and `token_expires_at` come
 * only with a pass.
 */
export function sessionResultAttributes(outcome: SessionProofOutcome): object {
  return {
    agent_id: outcome.agentId,
    evaluation: outcome.evaluation,
    ...(outcome.evaluation === 'pass' ? { token: outcome.token } : {}),
    authentication: [
      {
        ...POP,
        chosen_parameters: { challenge: outcome.challenge },
        data: { message: outcome.message, signature: outcome.signature },
      },
    ],
    created_at: outcome.createdAt.toISOString(),
    challenges_expire_at: outcome.challengesExpireAt.toISOString(),
    response_received_at: outcome.responseReceivedAt.toISOString(),
    ...(outcome.evaluation === 'pass' ? { token_expires_at: outcome.tokenExpiresAt.toISOString() } : {}),
  };
}

/** An attestation as JSON:API `data`: what was asked for and, once judged, the outcome. */
export function attestationDocument(attestation: PushAttestation): object {
  return {
    type: 'attestation',
    id: String(attestation.index),
    attributes: {
      stage: attestation.stage,
      ...(attestation.evaluation === null ? {} : { evaluation: attestation.evaluation, failure_reason: attestation.failureReason }),
      evidence_requested: requestedItems(attestation.challenge, attestation.choice),
      system_info: attestation.systemInfo,
      ...phaseTimes(attestation),
      ...(attestation.verificationCompletedAt === null ? {} : { verification_completed_at: attestation.verificationCompletedAt.toISOString() }),
    },
  };
}

/** When phase 1 was received, its challenges expire and, once sent, the evidence was received (RFC 3339). */
function phaseTimes(attestation: PushAttestation): object {
  return {
    capabilities_received_at: attestation.capabilitiesReceivedAt.toISOString(),
    challenges_expire_at: attestation.challengesExpireAt.toISOString(),
    ...(attestation.evidenceReceivedAt === null ? {} : { evidence_received_at: attestation.evidenceReceivedAt.toISOString() }),
  };
}

interface RequestedItem {
  readonly evidence_class: string;
  readonly evidence_type: string;
  readonly chosen_parameters: object;
}

/** `evidence_requested[]` with Keylime's `chosen_parameters` (spec §10.3). */
function requestedItems(challenge: string, choice: PushChoice): RequestedItem[] {
  const items: RequestedItem[] = [
    {
      evidence_class: 'certification',
      evidence_type: 'tpm_quote',
      chosen_parameters: {
        challenge,
        signature_scheme: choice.signatureScheme,
        hash_algorithm: choice.hashAlg,
        selected_subjects: choice.selectedSubjects,
        certification_key: choice.certificationKey,
      },
    },
  ];
  if (choice.uefiLog) {
    items.push({ evidence_class: 'log', evidence_type: 'uefi_log', chosen_parameters: { format: 'application/octet-stream' } });
  }
  if (choice.imaStartingOffset !== null) {
    items.push({ evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: choice.imaStartingOffset, format: 'text/plain' } });
  }
  return items;
}

/**
 * The 202 of an evidence PATCH as its JSON text, as Keylime's `render_evidence_acknowledged` answers it
 * and the Rust agent reads it (`EvidenceHandlingResponse`, whose parse failing makes the agent ignore
 * `meta` and wait its own default interval): each requested item with its capabilities as received in
 * phase 1, its `chosen_parameters` and its `data`, plus `system_info`, and
 * `meta.seconds_to_next_attestation` as a whole number of seconds. The quote's data is repeated as sent
 * (a few KiB); a log's `entries` is repeated empty, with the IMA `entry_count` — the struct requires the
 * fields, not the text, and repeating a whole IMA log to the agent that sent it would only cost.
 *
 * Written member by member rather than as one object given to `JSON.stringify`: the document's fixed
 * levels were built as objects (spreads, a mapped list) only to be walked again, about half of the
 * reply's cost. Every value goes through `JSON.stringify` itself, and a member whose value it leaves
 * out (undefined) is left out, so the text is the one `JSON.stringify` gives for the document
 * (`test/verifier/push-documents.test.ts` compares them on hostile attestations and bodies).
 */
export function evidenceAcknowledgedText(attestation: PushAttestation, body: EvidenceBody, quoteInterval: number): string {
  const collected = body.data.attributes.evidence_collected;
  const choice = attestation.choice;
  const kept = choice.capabilities;
  const item = (type: string, chosen: string): string => {
    const capabilities = kept?.[type] ?? restatedCapabilities(type, choice);
    const data = acknowledgedData(type, collected.find((c) => c.evidence_type === type));
    return `{"evidence_class":${type === 'tpm_quote' ? '"certification"' : '"log"'},"evidence_type":"${type}","chosen_parameters":${chosen}${member('capabilities', capabilities)},"data":${data}}`;
  };
  const quoteParameters = object(
    member('challenge', attestation.challenge, ''),
    member('signature_scheme', choice.signatureScheme) +
      member('hash_algorithm', choice.hashAlg) +
      member('selected_subjects', choice.selectedSubjects) +
      member('certification_key', choice.certificationKey),
  );
  let evidence = item('tpm_quote', quoteParameters);
  if (choice.uefiLog) evidence += `,${item('uefi_log', '{"format":"application/octet-stream"}')}`;
  if (choice.imaStartingOffset !== null) evidence += `,${item('ima_log', object(member('starting_offset', choice.imaStartingOffset, ''), ',"format":"text/plain"'))}`;
  const bootTime = attestation.systemInfo['boot_time'];
  const attributes = object(
    member('stage', attestation.stage, ''),
    `,"evidence":[${evidence}]` +
      (typeof bootTime === 'string' ? `,"system_info":{"boot_time":${JSON.stringify(bootTime)}}` : '') +
      `,"capabilities_received_at":${JSON.stringify(attestation.capabilitiesReceivedAt.toISOString())}` +
      `,"challenges_expire_at":${JSON.stringify(attestation.challengesExpireAt.toISOString())}` +
      (attestation.evidenceReceivedAt === null ? '' : `,"evidence_received_at":${JSON.stringify(attestation.evidenceReceivedAt.toISOString())}`),
  );
  return `{"data":{"type":"attestation","id":${JSON.stringify(String(attestation.index))},"attributes":${attributes}},"meta":{"seconds_to_next_attestation":${JSON.stringify(pushAttestationWaitSeconds(quoteInterval))}}}`;
}

/** `,"name":<value as JSON>` (`comma` '' for a first member), or nothing when `JSON.stringify` leaves the member out (its value undefined, a function). */
function member(name: string, value: unknown, comma = ','): string {
  const text = JSON.stringify(value) as string | undefined;
  return text === undefined ? '' : `${comma}"${name}":${text}`;
}

/**
 * A JSON object from its first member (without a comma) and the others (each with its comma). Only a
 * first member left out costs a slice, which copies the concatenated rest into one string: the
 * common case joins the pieces without copying them (measured: slicing every object doubled the
 * reply's garbage).
 */
function object(first: string, rest: string): string {
  return first === '' ? `{${rest.slice(1)}}` : `{${first}${rest}}`;
}

/**
 * The capabilities of an item for an attestation that kept none (created by a verifier before they
 * were kept, answered after an upgrade), restated from what was chosen from them in the shapes the
 * Rust agent parses (`Capabilities`, `LogCapabilities`): without them it could not read the 202,
 * would wait its own default interval (60 s) and could be failed by the silence sweep. The chosen
 * hash, scheme, PCRs and key, the IMA entry count the agent announced; the UEFI log's was not kept (0).
 */
function restatedCapabilities(type: string, choice: PushChoice): object {
  if (type === 'tpm_quote') {
    return {
      component_version: '2.0',
      hash_algorithms: [choice.hashAlg],
      signature_schemes: [choice.signatureScheme],
      available_subjects: { [choice.hashAlg]: choice.pcrs },
      certification_keys: [choice.certificationKey],
    };
  }
  const ima = type === 'ima_log';
  return {
    entry_count: ima ? (choice.imaEntryCount ?? 0) : 0,
    supports_partial_access: ima,
    appendable: ima,
    formats: [ima ? 'text/plain' : 'application/octet-stream'],
  };
}

/** An item's `data` in the 202, as JSON: the quote as sent; a log's fields with its text left out. */
function acknowledgedData(type: string, item: EvidenceCollected | undefined): string {
  const data = item?.data;
  if (type === 'tpm_quote') {
    return object(member('subject_data', data?.subject_data ?? '', ''), member('message', data?.message ?? '') + member('signature', data?.signature ?? ''));
  }
  if (type === 'ima_log') return `{"entries":""${member('entry_count', data?.entry_count ?? (data?.entries === undefined ? 0 : countLines(data.entries)))}}`;
  return '{"entries":""}';
}
