import { IMA_PCR } from '../tpm/keylime-profile.js';

/** PCRs 0-7: the firmware, its settings, the boot loader and Secure Boot (TCG PC Client PFP). */
const BOOT_CHAIN_PCRS = 0xff;

/**
 * What an enrolment's PCR mask leaves unattested, said so that a PASS is not read as more than it is
 * (Keylime accepts such an enrolment and passes it; so do we). A mask of 0 quotes no PCR at all: the
 * PASS then says only that the node's TPM answers. Empty when the boot chain and IMA are both covered.
 */
export function coverageWarnings(mask: number): string[] {
  if (mask === 0) {
    return ['the verifier quotes no PCR for this agent (no --runtime-policy, --mb-policy or --tpm-policy PCR): a PASS says only that its TPM answers, nothing of its boot or software'];
  }
  const warnings: string[] = [];
  if ((mask & BOOT_CHAIN_PCRS) === 0) {
    warnings.push('no PCR of the boot chain (0-7) is checked: a PASS says nothing of its firmware or boot loader (give --mb-policy, made with `ironlime mb refstate`)');
  }
  if ((mask & (1 << IMA_PCR)) === 0) {
    warnings.push('PCR 10 (IMA) is not checked: a PASS says nothing of the software it runs (give --runtime-policy)');
  }
  return warnings;
}

/** The PCR mask of a verifier's `tpm_policy` text (`{"mask": "0x…"}`), or undefined when it has none readable. */
export function maskOfTpmPolicy(tpmPolicy: unknown): number | undefined {
  if (typeof tpmPolicy !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(tpmPolicy);
  } catch {
    return undefined;
  }
  const mask = typeof parsed === 'object' && parsed !== null ? (parsed as { mask?: unknown }).mask : undefined;
  return typeof mask === 'string' && /^0x[0-9a-f]{1,6}$/i.test(mask) ? Number.parseInt(mask, 16) : undefined;
}
