import { pushAttestationWaitSeconds } from '../../lib/attestation/freshness.js';
import { countLines, type PushChoice } from '../../lib/attestation/push-decision.js';
import type { EvidenceBody, EvidenceCollected } from '../../lib/verifier/push/push-dtos.js';
import type { PushAttestation } from '../../lib/verifier/push/push-repository.js';

// The 202's document as `lib/verifier/push/push-documents.ts` built it before it wrote the text member by
// member (`evidenceAcknowledgedText`), kept as the reference the text must equal once given to
// `JSON.stringify`: the wire bytes must not change (keylime-protocol §10.4).

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
 * The 202 of an evidence PATCH, as Keylime's `render_evidence_acknowledged` answers it and the Rust
 * agent reads it (`EvidenceHandlingResponse`, whose parse failing makes the agent ignore `meta` and
 * wait its own default interval): each requested item with its capabilities as received in phase 1,
 * its `chosen_parameters` and its `data`, plus `system_info`, and `meta.seconds_to_next_attestation`
 * as a whole number of seconds. The quote's data is repeated as sent (a few KiB); a log's `entries` is
 * repeated empty, with the IMA `entry_count` — the struct requires the fields, not the text, and
 * repeating a whole IMA log to the agent that sent it would only cost.
 */
export function previousEvidenceAcknowledged(attestation: PushAttestation, body: EvidenceBody, quoteInterval: number): object {
  const collected = body.data.attributes.evidence_collected;
  const kept = attestation.choice.capabilities;
  const bootTime = attestation.systemInfo['boot_time'];
  return {
    data: {
      type: 'attestation',
      id: String(attestation.index),
      attributes: {
        stage: attestation.stage,
        evidence: requestedItems(attestation.challenge, attestation.choice).map((item) => ({
          ...item,
          capabilities: kept?.[item.evidence_type] ?? restatedCapabilities(item.evidence_type, attestation.choice),
          data: acknowledgedData(item.evidence_type, collected.find((c) => c.evidence_type === item.evidence_type)),
        })),
        ...(typeof bootTime === 'string' ? { system_info: { boot_time: bootTime } } : {}),
        ...phaseTimes(attestation),
      },
    },
    meta: { seconds_to_next_attestation: pushAttestationWaitSeconds(quoteInterval) },
  };
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

/** An item's `data` in the 202: the quote as sent; a log's fields with its text left out. */
function acknowledgedData(type: string, item: EvidenceCollected | undefined): object {
  const data = item?.data;
  if (type === 'tpm_quote') return { subject_data: data?.subject_data ?? '', message: data?.message ?? '', signature: data?.signature ?? '' };
  if (type === 'ima_log') return { entries: '', entry_count: data?.entry_count ?? (data?.entries === undefined ? 0 : countLines(data.entries)) };
  return { entries: '' };
}
