import { IronlimeError } from '../../interfaces/errors.js';
import { loadCertStore, loadDefaultCertStore } from '../pki/cert-store-files.js';
import type { CertStore } from '../tpm/cert-store.js';
import { ekPublicMatchesCertificate, verifyEkCertificate } from '../tpm/ek-certificate.js';
import { parsePublicArea } from '../tpm/tpmt-public.js';
import { tpmKeyWeakness } from '../tpm/weak-tpm-key.js';
import type { RegisteredAgent } from './registrar-agents.js';

/** Keylime `[tenant] require_ek_cert` as three modes: refuse, only report, or skip. */
export const TENANT_EK_CHECK_MODES = ['require', 'warn', 'off'] as const;
export type TenantEkCheckMode = (typeof TENANT_EK_CHECK_MODES)[number];

/** The vendor store (Keylime's `tpm_cert_store`, shipped in `fixtures/`) plus every `extraCaDirs` folder. */
export function loadTenantCertStore(extraCaDirs: readonly string[] = []): CertStore {
  const stores = [loadDefaultCertStore(), ...extraCaDirs.map((dir) => loadCertStore(dir))];
  return { entries: stores.flatMap((store) => store.entries) };
}

export type EkCheckOutcome =
  | {
      readonly ok: true;
      /** Store entry that anchors the chain; undefined when the check was off or only warned. */
      readonly anchor: string | undefined;
      /** The problem found under `warn` (accepted anyway), or undefined. */
      readonly warning: string | undefined;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * The tenant's EK certificate check (Keylime `cert_utils.verify_ek`, spec §5.3), stricter in two
 * ways: the certificate must also hold the registered EK public key, and that key must not be a short
 * or ROCA RSA key (`tpmKeyWeakness`; Keylime's registrar takes them). Under `require` a missing,
 * unreadable or untrusted certificate fails; under `warn` it is accepted with a warning; `off` skips.
 * Validity dates and EKUs are not checked, as in Keylime (EK certificates outlive their CAs).
 */
export function checkRegisteredEkCertificate(agent: RegisteredAgent, mode: TenantEkCheckMode, store: CertStore): EkCheckOutcome {
  if (mode === 'off') {
    return { ok: true, anchor: undefined, warning: undefined };
  }
  const problemOrAnchor = judge(agent, store);
  if (problemOrAnchor.anchor !== undefined) {
    return { ok: true, anchor: problemOrAnchor.anchor, warning: undefined };
  }
  const problem = `EK certificate of agent '${agent.agentId}': ${problemOrAnchor.problem}`;
  // Only `warn` accepts a problem: a mode this check does not know (a typo from untyped code) refuses.
  return mode === 'warn' ? { ok: true, anchor: undefined, warning: problem } : { ok: false, reason: problem };
}

function judge(agent: RegisteredAgent, store: CertStore): { anchor: string; problem?: undefined } | { anchor?: undefined; problem: string } {
  if (agent.ekCertificate === null) {
    return { problem: 'the agent registered no EK certificate' };
  }
  try {
    if (!ekPublicMatchesCertificate(agent.ekPublic, agent.ekCertificate)) {
      return { problem: 'the certificate does not hold the registered EK public key' };
    }
    // A vulnerable Infineon TPM's EK certificate is genuine: the key it holds is what cannot be trusted.
    const weakness = tpmKeyWeakness(parsePublicArea(agent.ekPublic));
    if (weakness !== null) return { problem: `the EK ${weakness}` };
    const verdict = verifyEkCertificate(agent.ekCertificate, store);
    return verdict.valid ? { anchor: verdict.anchor } : { problem: verdict.reason };
  } catch (error) {
    if (error instanceof IronlimeError) {
      return { problem: error.message };
    }
    throw error;
  }
}
