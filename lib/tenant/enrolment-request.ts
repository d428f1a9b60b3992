import { InvalidParameterValue } from '../../interfaces/errors.js';
import { formatPcrMask, parseTpmPolicy } from '../attestation/tpm-policy.js';
import { loadPolicyVerificationKey } from '../ima/dsse-envelope.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import type { VerifierEnrolmentBody } from './verifier-client.js';
import { DEFAULT_ACCEPTED_HASH_ALGS, DEFAULT_ACCEPTED_SIGN_ALGS } from './identity-check.js';
import type { RegisteredAgent } from './registrar-agents.js';

/** PCRs measured boot uses (Keylime `MEASUREDBOOT_PCRS`): added to the mask with a refstate. */
export const MEASUREDBOOT_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];
/** The IMA PCR, added to the mask with a runtime policy. */
const IMA_PCR = 10;
/** Keylime `[tenant] accept_tpm_encryption_algs` default. */
export const DEFAULT_ACCEPTED_ENC_ALGS: readonly string[] = ['ecc', 'rsa'];

/** The policies an agent is enrolled with (spec §4.1). Give each kind once: text or a stored name. */
export interface EnrolmentPolicies {
  /** Runtime policy text: Keylime JSON, a DSSE envelope (with `runtimePolicyKey`) or a flat allowlist. */
  readonly runtimePolicy?: string;
  /** Regexes to exclude, one per line (Keylime's exclude list), added to a flat allowlist. */
  readonly excludeList?: string;
  /** Store the policy under this name (default: the agent id), or, without `runtimePolicy`, use the stored one. */
  readonly runtimePolicyName?: string;
  /** PEM public key (or certificate) a DSSE-signed policy is verified with. */
  readonly runtimePolicyKey?: string;
  /** Measured-boot refstate JSON text (Keylime `example` format). */
  readonly mbPolicy?: string;
  /** Store the refstate under this name, or, without `mbPolicy`, use the stored one. */
  readonly mbPolicyName?: string;
  /** `{"<pcr>": ["<hex>", …]}` (a `mask` is computed); PCR 10 and 16 are refused. */
  readonly tpmPolicy?: Readonly<Record<string, readonly string[] | string>> | string;
  /** IMA keyring JSON (`ima_sign_verification_keys`). */
  readonly imaSignVerificationKeys?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly acceptTpmHashAlgs?: readonly string[];
  readonly acceptTpmEncryptionAlgs?: readonly string[];
  readonly acceptTpmSigningAlgs?: readonly string[];
}

export interface EnrolmentTarget {
  readonly agent: RegisteredAgent;
  /** Where the verifier reaches the agent. */
  readonly ip: string;
  readonly port: number;
  /** Base64 V (32 bytes) when a payload key is delivered, else null. */
  readonly v: string | null;
  /** Agent API version for the verifier's requests. */
  readonly supportedVersion: string;
}

/**
 * The verifier enrolment body, as Keylime's tenant builds it (`do_cvadd`, spec §4.1): `tpm_policy`
 * with its `mask` = the policy's PCRs, plus PCR 10 with a runtime policy and the measured-boot PCRs
 * with a refstate; the runtime policy base64-encoded (a flat allowlist and exclude list are converted
 * to a runtime policy here, as `keylime_tenant` does); the refstate as JSON text. Every policy is
 * parsed here first so a bad file is reported before anything is sent.
 *
 * @throws InvalidParameterValue / RuntimePolicyError / PolicySignatureError / MbRefstateError
 */
export function buildEnrolmentBody(target: EnrolmentTarget, policies: EnrolmentPolicies): VerifierEnrolmentBody {
  if (target.agent.mtlsCert === null) {
    throw new InvalidParameterValue('agent', `${target.agent.agentId} registered no mTLS certificate (push agents cannot be enrolled for pull)`);
  }
  const tpmPolicyText = typeof policies.tpmPolicy === 'string' ? policies.tpmPolicy : JSON.stringify(policies.tpmPolicy ?? {});
  const parsed = parseTpmPolicy(tpmPolicyText, 'tpm_policy');
  let mask = parsed.mask;
  let runtimePolicy = '';
  if (policies.runtimePolicy !== undefined) {
    const loaded = loadRuntimePolicy(policies.runtimePolicy, {
      ...(policies.excludeList === undefined ? {} : { excludeListText: policies.excludeList }),
      ...(policies.runtimePolicyKey === undefined ? {} : { signingKey: loadPolicyVerificationKey(policies.runtimePolicyKey) }),
    });
    // A signed policy goes to the verifier as signed (it checks the signature itself); others as JSON.
    const text = loaded.format === 'signed-runtime-policy' ? policies.runtimePolicy : JSON.stringify(loaded.policy);
    runtimePolicy = Buffer.from(text, 'utf8').toString('base64');
  }
  if (policies.runtimePolicy !== undefined || policies.runtimePolicyName !== undefined) {
    mask |= 1 << IMA_PCR;
  }
  if (policies.mbPolicy !== undefined) {
    parseMbRefstate(policies.mbPolicy);
  }
  if (policies.mbPolicy !== undefined || policies.mbPolicyName !== undefined) {
    for (const pcr of MEASUREDBOOT_PCRS) {
      mask |= 1 << pcr;
    }
  }
  const tpmPolicy: Record<string, unknown> = {};
  for (const [pcr, values] of parsed.pcrs) {
    tpmPolicy[String(pcr)] = values;
  }
  tpmPolicy['mask'] = formatPcrMask(mask);
  return {
    v: target.v,
    cloudagent_ip: target.ip,
    cloudagent_port: target.port,
    tpm_policy: JSON.stringify(tpmPolicy),
    runtime_policy: runtimePolicy,
    ...(policies.runtimePolicyName === undefined ? {} : { runtime_policy_name: policies.runtimePolicyName }),
    ...(policies.runtimePolicyKey === undefined ? {} : { runtime_policy_key: Buffer.from(policies.runtimePolicyKey, 'utf8').toString('base64') }),
    mb_policy: policies.mbPolicy ?? null,
    mb_policy_name: policies.mbPolicyName ?? '',
    ima_sign_verification_keys: policies.imaSignVerificationKeys ?? '',
    metadata: JSON.stringify(policies.metadata ?? {}),
    revocation_key: '',
    accept_tpm_hash_algs: policies.acceptTpmHashAlgs ?? DEFAULT_ACCEPTED_HASH_ALGS,
    accept_tpm_encryption_algs: policies.acceptTpmEncryptionAlgs ?? DEFAULT_ACCEPTED_ENC_ALGS,
    accept_tpm_signing_algs: policies.acceptTpmSigningAlgs ?? DEFAULT_ACCEPTED_SIGN_ALGS,
    ak_tpm: Buffer.from(target.agent.akPublic).toString('base64'),
    mtls_cert: target.agent.mtlsCert,
    supported_version: target.supportedVersion,
  };
}
