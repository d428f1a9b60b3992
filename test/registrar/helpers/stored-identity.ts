import type { StoredAgent } from '../../../lib/registrar/registrar-agent-repository.js';

/** The identity fields of a stored hardware-TPM registration (issue 15), for records built by hand. */
export const TPM_IDENTITY: Pick<StoredAgent, 'identityMode' | 'trustLevel' | 'hostIdHash' | 'hostProofKey' | 'modeChangeTo' | 'flaggedReason'> = Object.freeze({
  identityMode: 'tpm',
  trustLevel: 'hardware-tpm',
  hostIdHash: null,
  hostProofKey: null,
  modeChangeTo: null,
  flaggedReason: null,
});
