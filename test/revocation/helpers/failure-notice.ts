import type { AgentFailureNotice } from '../../../lib/revocation/revocation-notice.js';

/**
 * The notice a verifier hands its revocation notifier when agent `failed` (10.0.0.7:9002, tenant-a)
 * misses the IMA allowlist (severity emergency), to be signed with `revocationKey`; `extra` overrides.
 */
export function failureNotice(revocationKey: string, extra: Partial<AgentFailureNotice> = {}): AgentFailureNotice {
  return {
    agentId: 'failed',
    ip: '10.0.0.7',
    port: 9002,
    tpmPolicy: '{"mask": "0x0"}',
    metaData: '{}',
    revocationKey,
    eventId: 'ima.validation.ima-ng.not_in_allowlist',
    severityLabel: 'emergency',
    context: {},
    tenant: 'tenant-a',
    ...extra,
  };
}
