import type { AgentPolicies } from '../agent-policies.js';
import type { AgentAttestationState } from '../agent-state.js';
import type { RoundInput } from '../attestation-checks.js';
import { initialImaReplayState } from '../../ima/ima-replay-state.js';
import type { EvaluateQuoteOptions } from './evaluate-quote.js';

/** How a round treats the stored IMA state: continue from it, start again from entry 0, or not replay at all. */
export type ImaRoundMode = 'continue' | 'reset' | 'skip';

/** The evidence-side inputs of the IMA and measured-boot checks, whatever the transport (pull reply or push PATCH). */
export interface PolicyEvidence {
  readonly imaList: string | null | undefined;
  readonly imaStartEntry: number;
  readonly imaMode: ImaRoundMode;
  /** base64 of the binary UEFI event log, or absent. */
  readonly eventLog: string | null | undefined;
}

/**
 * The parts of `runAttestationChecks`' input that come from the agent's policies and stored state:
 * the AK, `tpm_policy`, the runtime policy and keyring, the IMA replay state and the measured-boot
 * input (`once`: evaluated while `attestationCount` is 0). Pull rounds and push evidence both build
 * them here, so the same evidence meets the same policy inputs on either path.
 */
export function policyRoundInput(
  state: AgentAttestationState,
  policies: AgentPolicies,
  tpmPolicy: RoundInput['tpmPolicy'],
  evidence: PolicyEvidence,
  options: EvaluateQuoteOptions,
): Pick<RoundInput, 'akTpm' | 'tpmPolicy' | 'ima' | 'runtimePolicy' | 'imaKeyring' | 'failOnTomtou' | 'mb' | 'matchAllowanceNs'> {
  return {
    akTpm: policies.akTpm,
    tpmPolicy,
    ima: {
      listText: evidence.imaList,
      startEntry: evidence.imaStartEntry,
      state: evidence.imaMode === 'continue' ? state.ima : initialImaReplayState(),
      replay: evidence.imaMode !== 'skip',
    },
    runtimePolicy: policies.runtimePolicy,
    imaKeyring: policies.imaKeyring,
    failOnTomtou: options.failOnTomtou === true,
    matchAllowanceNs: options.matchAllowanceNs,
    mb: {
      eventLog: evidence.eventLog,
      refstate: policies.mbRefstate,
      evaluatePolicy: policies.measuredBootEvaluate === 'always' || state.attestationCount === 0,
      policyName: options.measuredBootPolicy ?? 'example',
      memo: options.mbMemo,
    },
  };
}
