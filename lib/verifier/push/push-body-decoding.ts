import type { OfferedKey, PushCapabilities, PushEvidence } from '../../attestation/push-decision.js';
import { bootTimeSeconds } from './boot-time.js';
import type { CapabilitiesBody, EvidenceBody, EvidenceCapabilities } from './push-dtos.js';
import { PushRefused } from './push-reply.js';

// The push bodies (push-dtos.ts, already validated) decoded into what the engine reads (push-decision.ts).

/** `decode()`, or undefined when it refuses (`PushRefused`): the caller then takes the path that reads and explains. */
export function unlessRefused<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error) {
    if (error instanceof PushRefused) return undefined;
    throw error;
  }
}

/** The DTO's capabilities as the engine reads them; a missing `tpm_quote` item is 422. */
export function capabilitiesOf(body: CapabilitiesBody): PushCapabilities {
  const items = body.data.attributes.evidence_supported;
  const quote = items.find((i) => i.evidence_type === 'tpm_quote')?.capabilities;
  if (quote === undefined) {
    throw new PushRefused(422, 'invalid_capabilities', 'evidence_supported must include a tpm_quote item');
  }
  const bootTime = body.data.attributes.system_info?.boot_time;
  const uefi = items.find((i) => i.evidence_type === 'uefi_log')?.capabilities;
  const ima = items.find((i) => i.evidence_type === 'ima_log')?.capabilities;
  return {
    bootTime: bootTime === undefined ? null : bootTimeSeconds(bootTime),
    quote: {
      componentVersion: quote.component_version ?? '',
      signatureSchemes: quote.signature_schemes ?? [],
      hashAlgorithms: quote.hash_algorithms ?? [],
      availableSubjects: quote.available_subjects ?? {},
      certificationKeys: (quote.certification_keys ?? []).map(
        (k): OfferedKey => ({
          keyAlgorithm: k.key_algorithm,
          serverIdentifier: k.server_identifier,
          public: k.public,
          allowableSignatureSchemes: k.allowable_signature_schemes,
          allowableHashAlgorithms: k.allowable_hash_algorithms,
          raw: { ...k },
        }),
      ),
    },
    uefiLog: logOf(uefi),
    imaLog: logOf(ima),
    received: Object.fromEntries(items.map((i) => [i.evidence_type, withoutMeta(i.capabilities)])),
  };
}

/** Capabilities as received, less `meta`, which is ignored (and not stored with the attestation). */
function withoutMeta(capabilities: EvidenceCapabilities): Record<string, unknown> {
  const kept: Record<string, unknown> = { ...capabilities };
  delete kept['meta'];
  return kept;
}

function logOf(capabilities: EvidenceCapabilities | undefined): { entryCount: number } | undefined {
  return capabilities === undefined ? undefined : { entryCount: capabilities.entry_count ?? 0 };
}

/** The DTO's evidence, decoded; a missing or incomplete `tpm_quote` item is 422. */
export function evidenceOf(body: EvidenceBody): PushEvidence {
  const items = body.data.attributes.evidence_collected;
  const quote = items.find((i) => i.evidence_type === 'tpm_quote')?.data;
  if (quote?.message === undefined || quote.signature === undefined || quote.subject_data === undefined) {
    throw new PushRefused(422, 'invalid_evidence', 'evidence_collected must include a tpm_quote with message, signature and subject_data');
  }
  const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
  return {
    message: bytes(quote.message),
    signature: bytes(quote.signature),
    subjectData: bytes(quote.subject_data),
    uefiLog: items.find((i) => i.evidence_type === 'uefi_log')?.data.entries,
    imaEntries: items.find((i) => i.evidence_type === 'ima_log')?.data.entries,
  };
}
