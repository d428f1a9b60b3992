import { randomBytes } from 'node:crypto';
import type { PushAttestation } from '../lib/verifier/push/push-repository.js';

/**
 * The bodies of `npm run bench -- push-http2`, shaped and sized as the bench fleet's push agents send
 * them (an ECC AK, PCRs 0–15 in the sha256 bank, the boot log held by the verifier, about one IMA
 * entry per attestation): the bytes the two protocols carry, not a TPM's work.
 */

/** The one session token every simulated agent sends (`<session id>.<secret>`, as long as a real one). */
export const BENCH_TOKEN = `d432fbb3-d2f1-4a97-9ef7-75bd81c00000.${Buffer.alloc(32, 7).toString('base64url')}`;

const PCRS = Array.from({ length: 16 }, (_, i) => i);
const KEY = {
  key_class: 'asymmetric',
  key_algorithm: 'ecc',
  key_size: 256,
  server_identifier: 'ak',
  allowable_signature_schemes: ['ecdsa'],
  allowable_hash_algorithms: ['sha256'],
  public: randomBytes(88).toString('base64'),
};
const QUOTE_CAPABILITIES = {
  component_version: '2.0',
  hash_algorithms: ['sha256'],
  signature_schemes: ['ecdsa'],
  available_subjects: { sha256: Array.from({ length: 24 }, (_, i) => i) },
  certification_keys: [KEY],
};
const UEFI_CAPABILITIES = { evidence_version: '2.1', entry_count: 42, supports_partial_access: false, appendable: false, formats: ['application/octet-stream'] };
const IMA_CAPABILITIES = { entry_count: 1200, supports_partial_access: true, appendable: true, formats: ['text/plain'] };

/** Phase 1's body. */
export const CAPABILITIES_BODY = JSON.stringify({
  data: {
    type: 'attestation',
    attributes: {
      evidence_supported: [
        { evidence_class: 'certification', evidence_type: 'tpm_quote', capabilities: QUOTE_CAPABILITIES },
        { evidence_class: 'log', evidence_type: 'uefi_log', capabilities: UEFI_CAPABILITIES },
        { evidence_class: 'log', evidence_type: 'ima_log', capabilities: IMA_CAPABILITIES },
      ],
      system_info: { boot_time: '2026-12-07T08:00:00Z' },
    },
  },
});

/** Phase 2's body: a quote (TPMS_ATTEST, TPMT_SIGNATURE, the PCR blob of 16 PCRs) and one IMA line. */
export const EVIDENCE_BODY = JSON.stringify({
  data: {
    type: 'attestation',
    attributes: {
      evidence_collected: [
        {
          evidence_class: 'certification',
          evidence_type: 'tpm_quote',
          data: { message: randomBytes(129).toString('base64'), signature: randomBytes(72).toString('base64'), subject_data: randomBytes(560).toString('base64') },
        },
        {
          evidence_class: 'log',
          evidence_type: 'ima_log',
          data: { entries: `10 ${'a'.repeat(40)} ima-ng sha256:${'b'.repeat(64)} /usr/lib/x86_64-linux-gnu/libc.so.6\n`, entry_count: 1 },
        },
      ],
    },
  },
});

/** The attestation the stand-in for `PushAttestations` answers with, at `stage`. */
export function benchAttestation(agentId: string, stage: PushAttestation['stage']): PushAttestation {
  const now = Date.now();
  return {
    agentId,
    index: 7,
    stage,
    evaluation: null,
    failureReason: null,
    challenge: randomBytes(32).toString('base64'),
    choice: {
      hashAlg: 'sha256',
      signatureScheme: 'ecdsa',
      pcrs: PCRS,
      selectedSubjects: { sha256: PCRS },
      certificationKey: KEY,
      capabilities: { tpm_quote: QUOTE_CAPABILITIES, uefi_log: UEFI_CAPABILITIES, ima_log: IMA_CAPABILITIES },
      uefiLog: false,
      uefiLogHeld: true,
      imaStartingOffset: 1199,
      imaEntryCount: 1200,
      imaMode: 'continue',
      bootTime: Date.parse('2026-12-07T08:00:00Z') / 1000,
    },
    systemInfo: { boot_time: '2026-12-07T08:00:00Z' },
    capabilitiesReceivedAt: new Date(now),
    challengesExpireAt: new Date(now + 1_800_000),
    evidenceReceivedAt: stage === 'awaiting_evidence' ? null : new Date(now),
    verificationCompletedAt: null,
  };
}
