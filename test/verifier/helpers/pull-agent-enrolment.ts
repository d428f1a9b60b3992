import type { VerifierAgentEnrolment } from '../../../lib/verifier/verifier-agent-record.js';

/** What a test chooses of a pull agent's enrolment; the rest is fixed below. */
export type PullAgentFields = Pick<VerifierAgentEnrolment, 'agentId' | 'port' | 'tpmPolicy' | 'akTpm' | 'mtlsCert' | 'supportedVersion'>;

/**
 * The enrolment of a pull agent polled at 127.0.0.1: no payload, runtime or measured-boot policy,
 * revocation key or IMA keys, SHA-256 / RSA / RSASSA only, on the `default` verifier.
 */
export function pullAgentEnrolment(fields: PullAgentFields): VerifierAgentEnrolment {
  return {
    ...fields,
    v: null,
    ip: '127.0.0.1',
    attestationMode: 'pull',
    verifierIp: null,
    verifierPort: null,
    runtimePolicyName: null,
    mbPolicyName: null,
    imaSignVerificationKeys: '',
    metaData: '{}',
    revocationKey: '',
    acceptTpmHashAlgs: ['sha256'],
    acceptTpmEncryptionAlgs: ['rsa'],
    acceptTpmSigningAlgs: ['rsassa'],
    verifierId: 'default',
  };
}
