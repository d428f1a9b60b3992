import type { PushCapabilities } from '../../../lib/attestation/push-decision.js';

/** A push agent's phase 1 capabilities: an RSA AK, SHA-256 quotes over all 24 PCRs, and the logs it offers. */
export function sha256Capabilities(logs: Pick<PushCapabilities, 'uefiLog' | 'imaLog'>): PushCapabilities {
  return {
    bootTime: 1_700_000_000,
    quote: {
      componentVersion: '2.0',
      signatureSchemes: ['rsassa'],
      hashAlgorithms: ['sha256'],
      availableSubjects: { sha256: Array.from({ length: 24 }, (_, i) => i) },
      certificationKeys: [{ keyAlgorithm: 'rsa', serverIdentifier: 'ak', public: undefined, allowableSignatureSchemes: undefined, allowableHashAlgorithms: undefined, raw: { server_identifier: 'ak' } }],
    },
    ...logs,
    received: {},
  };
}
