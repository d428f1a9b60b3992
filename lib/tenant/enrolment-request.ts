import { InvalidParameterValue } from '../../interfaces/errors.js';
import { formatPcrMask, parseTpmPolicy } from '../attestation/tpm-policy.js';
import { loadPolicyVerificationKey } from '../ima/dsse-envelope.js';
import { loadRuntimePolicy, type LoadedPolicy } from '../ima/policy-loader.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import {
  DEFAULT_ACCEPTED_ENC_ALGS,
  DEFAULT_ACCEPTED_HASH_ALGS,
  DEFAULT_ACCEPTED_SIGN_ALGS,
  IMA_PCR,
  MEASUREDBOOT_PCRS,
} from '../tpm/keylime-profile.js';
import type { VerifierEnrolmentBody } from '../verifier/verifier-client.js';
import type { RegisteredAgent } from './registrar-agents.js';

/**
 * The policies an agent is enrolled with (spec §4.1), as the operator gives them — the tenant's
 * options and the keylime driver's `driver_info` documents map onto this one shape. Give each kind
 * once: as text, or as the name of a policy the verifier stores.
 */
export interface EnrolmentPolicies {
  /** Runtime policy text: Keylime JSON, a DSSE envelope (with `runtimePolicyKey`) or a flat allowlist. */
  readonly runtimePolicy?: string;
  /** Regexes to exclude, one per line (Keylime's exclude list), added to the runtime policy. */
  readonly excludeList?: string;
  /** Store the policy under this name (default: the agent id), or, without `runtimePolicy`, use the stored one. */
  readonly runtimePolicyName?: string;
  /** PEM public key (or certificate) a DSSE-signed policy is verified with. */
  readonly runtimePolicyKey?: string;
  /** Measured-boot refstate JSON text (Keylime `example` format). */
  readonly mbPolicy?: string;
  /** Store the refstate under this name, or, without `mbPolicy`, use the stored one. */
  readonly mbPolicyName?: string;
  /** `{"<pcr>": ["<hex>", …]}` (its `mask` is widened as below); PCR 10 and 16 are refused. */
  readonly tpmPolicy?: Readonly<Record<string, readonly string[] | string>> | string;
  /** IMA keyring JSON (`ima_sign_verification_keys`, deprecated by Keylime in favour of the policy's keys). */
  readonly imaSignVerificationKeys?: string;
  readonly acceptTpmHashAlgs?: readonly string[];
  readonly acceptTpmEncryptionAlgs?: readonly string[];
  readonly acceptTpmSigningAlgs?: readonly string[];
}

/** The policy fields of an enrolment, every one parsed and judged, in wire form. */
export interface CheckedEnrolmentPolicies {
  /** `tpm_policy` JSON text, with its final `mask`. */
  readonly tpmPolicy: string;
  /** The final mask (bit i = PCR i). */
  readonly mask: number;
  /** How the runtime policy text was read, or undefined without one. */
  readonly runtimePolicyFormat: LoadedPolicy['format'] | undefined;
  /** base64 of the runtime policy sent (JSON, or the DSSE envelope as signed), or `''`. */
  readonly runtimePolicy: string;
  readonly runtimePolicyName: string | undefined;
  /** base64 of the PEM key, or undefined. */
  readonly runtimePolicyKey: string | undefined;
  readonly mbPolicy: string | null;
  readonly mbPolicyName: string;
  readonly imaSignVerificationKeys: string;
  readonly acceptTpmHashAlgs: readonly string[];
  readonly acceptTpmEncryptionAlgs: readonly string[];
  readonly acceptTpmSigningAlgs: readonly string[];
}

/** Who is enrolled and how the verifier reaches it. */
export interface EnrolmentTarget {
  /** The registrar record the identity check trusted: its AK and mTLS certificate are sent. */
  readonly agent: Pick<RegisteredAgent, 'agentId' | 'akPublic' | 'mtlsCert'>;
  /** Where the verifier reaches the agent. */
  readonly ip: string;
  readonly port: number;
  /** Base64 V (32 bytes) when a payload key is delivered, else null. */
  readonly v: string | null;
  /** Agent API version for the verifier's requests. */
  readonly supportedVersion: string;
  /** The enrolment's `metadata` (sent as JSON text; the verifier returns it as `meta_data`). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * PEM private key (RSA) the verifier signs this agent's revocation messages with (Keylime's
   * `revocation_key`); absent: none, and the messages go out unsigned, which agents refuse.
   */
  readonly revocationKey?: string;
}

/**
 * Parses and judges the policies of an enrolment, before anything is sent, and applies Keylime's
 * tenant rule for the PCR mask (keylime/cli/policies.py `process_policy`, spec §4.1):
 *
 * - the mask starts as `tpm_policy`'s own (its `mask`, else the PCRs it names);
 * - a runtime policy — as text (JSON, signed, or a flat allowlist plus exclude list), by stored name,
 *   or IMA signature keys — adds PCR 10 (`IMA_PCR`) whatever the policy holds: without PCR 10 in the
 *   quote the verifier cannot check the IMA list at all, so ironlime's verifier refuses such an
 *   enrolment (see lib/verifier/enrolment-check.ts);
 * - a measured-boot refstate, as text or by stored name, adds `MEASUREDBOOT_PCRS`;
 * - `tpm_policy` may not name PCR 10 or 16. Unlike Keylime's `enforce_pcrs`, a measured-boot PCR may
 *   be named beside a refstate: the verifier then checks both (the fleet pins PCR 15 this way).
 *
 * A flat allowlist is converted to a runtime policy here, as `keylime_tenant` does; a signed policy
 * is sent as signed (the verifier checks the signature itself).
 *
 * @throws InvalidParameterValue (field `tpm_policy…`; `exclude_list` or `runtime_policy_key` without a runtime policy text, `exclude_list` with a signed one), RuntimePolicyError / PolicySignatureError (the
 *   runtime policy or exclude list), MbRefstateError (the refstate).
 */
export function checkEnrolmentPolicies(policies: EnrolmentPolicies): CheckedEnrolmentPolicies {
  // A blank exclude list excludes nothing: taken wherever a list may be given.
  const excludes = (policies.excludeList ?? '').trim() !== '';
  if (policies.runtimePolicy === undefined && excludes) {
    throw new InvalidParameterValue('exclude_list', 'applies only to a runtime policy given as text (--runtime-policy or --allowlist); a stored policy keeps its own excludes');
  }
  if (policies.runtimePolicy === undefined && policies.runtimePolicyKey !== undefined) {
    throw new InvalidParameterValue('runtime_policy_key', 'verifies only a runtime policy given as text (--runtime-policy); a stored policy was verified when it was stored');
  }
  const tpmPolicyText = typeof policies.tpmPolicy === 'string' ? policies.tpmPolicy : JSON.stringify(policies.tpmPolicy ?? {});
  const parsed = parseTpmPolicy(tpmPolicyText, 'tpm_policy');
  let mask = parsed.mask;
  let runtimePolicy = '';
  let runtimePolicyFormat: LoadedPolicy['format'] | undefined;
  if (policies.runtimePolicy !== undefined) {
    const loaded = loadRuntimePolicy(policies.runtimePolicy, {
      ...(policies.excludeList === undefined ? {} : { excludeListText: policies.excludeList }),
      ...(policies.runtimePolicyKey === undefined ? {} : { signingKey: loadPolicyVerificationKey(policies.runtimePolicyKey) }),
    });
    runtimePolicyFormat = loaded.format;
    // The envelope is sent as signed: excludes merged into its payload would not be what the key signed.
    if (loaded.format === 'signed-runtime-policy' && excludes) {
      throw new InvalidParameterValue('exclude_list', 'cannot be added to a signed runtime policy: put the excludes in the policy before it is signed');
    }
    const text = loaded.format === 'signed-runtime-policy' ? policies.runtimePolicy : JSON.stringify(loaded.policy);
    runtimePolicy = Buffer.from(text, 'utf8').toString('base64');
  }
  const imaKeys = policies.imaSignVerificationKeys ?? '';
  if (policies.runtimePolicy !== undefined || policies.runtimePolicyName !== undefined || imaKeys.trim() !== '') {
    mask |= 1 << IMA_PCR;
  }
  const withRefstate = policies.mbPolicy !== undefined || policies.mbPolicyName !== undefined;
  if (policies.mbPolicy !== undefined) {
    parseMbRefstate(policies.mbPolicy);
  }
  if (withRefstate) {
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
    tpmPolicy: JSON.stringify(tpmPolicy),
    mask,
    runtimePolicyFormat,
    runtimePolicy,
    runtimePolicyName: policies.runtimePolicyName,
    runtimePolicyKey: policies.runtimePolicyKey === undefined ? undefined : Buffer.from(policies.runtimePolicyKey, 'utf8').toString('base64'),
    mbPolicy: policies.mbPolicy ?? null,
    mbPolicyName: policies.mbPolicyName ?? '',
    imaSignVerificationKeys: imaKeys,
    acceptTpmHashAlgs: policies.acceptTpmHashAlgs ?? DEFAULT_ACCEPTED_HASH_ALGS,
    acceptTpmEncryptionAlgs: policies.acceptTpmEncryptionAlgs ?? DEFAULT_ACCEPTED_ENC_ALGS,
    acceptTpmSigningAlgs: policies.acceptTpmSigningAlgs ?? DEFAULT_ACCEPTED_SIGN_ALGS,
  };
}

/**
 * The verifier enrolment body, as Keylime's tenant sends it (`do_cvadd`, spec §4.1), from checked
 * policies: the one builder the tenant (`TenantClient.addAgent`) and the keylime driver share, so the
 * two send the same request for the same input. The agent's AK and mTLS certificate come from the
 * registrar record the identity check trusted.
 *
 * @throws InvalidParameterValue for an agent without an mTLS certificate (a push agent, or mTLS
 *   "disabled"): Keylime's verifier refuses such a pull enrolment too, and the tenant cannot pin it.
 */
export function buildEnrolmentBody(target: EnrolmentTarget, policies: CheckedEnrolmentPolicies): VerifierEnrolmentBody {
  if (target.agent.mtlsCert === null) {
    throw new InvalidParameterValue('agent', `${target.agent.agentId} registered no mTLS certificate (push agents cannot be enrolled for pull)`);
  }
  return {
    v: target.v,
    cloudagent_ip: target.ip,
    cloudagent_port: target.port,
    ...policyFields(policies),
    metadata: JSON.stringify(target.metadata ?? {}),
    revocation_key: target.revocationKey ?? '',
    ak_tpm: Buffer.from(target.agent.akPublic).toString('base64'),
    mtls_cert: target.agent.mtlsCert,
    supported_version: target.supportedVersion,
  };
}

/** The policy fields of an enrolment body, pull or push. */
function policyFields(policies: CheckedEnrolmentPolicies): Pick<
  VerifierEnrolmentBody,
  'tpm_policy' | 'runtime_policy' | 'runtime_policy_name' | 'runtime_policy_key' | 'mb_policy' | 'mb_policy_name' | 'ima_sign_verification_keys' | 'accept_tpm_hash_algs' | 'accept_tpm_encryption_algs' | 'accept_tpm_signing_algs'
> {
  return {
    tpm_policy: policies.tpmPolicy,
    runtime_policy: policies.runtimePolicy,
    ...(policies.runtimePolicyName === undefined ? {} : { runtime_policy_name: policies.runtimePolicyName }),
    ...(policies.runtimePolicyKey === undefined ? {} : { runtime_policy_key: policies.runtimePolicyKey }),
    mb_policy: policies.mbPolicy,
    mb_policy_name: policies.mbPolicyName,
    ima_sign_verification_keys: policies.imaSignVerificationKeys,
    accept_tpm_hash_algs: policies.acceptTpmHashAlgs,
    accept_tpm_encryption_algs: policies.acceptTpmEncryptionAlgs,
    accept_tpm_signing_algs: policies.acceptTpmSigningAlgs,
  };
}

/**
 * The enrolment of a push agent (spec §10.1): `attestation_mode: "push"`, no address, port, mTLS
 * certificate or V (push mode delivers no payload); the policies as for a pull agent.
 */
export function buildPushEnrolmentBody(agent: Pick<RegisteredAgent, 'akPublic'>, policies: CheckedEnrolmentPolicies, metadata?: Readonly<Record<string, unknown>>): VerifierEnrolmentBody {
  return {
    attestation_mode: 'push',
    v: null,
    ...policyFields(policies),
    metadata: JSON.stringify(metadata ?? {}),
    revocation_key: '',
    ak_tpm: Buffer.from(agent.akPublic).toString('base64'),
    supported_version: '3.0',
  };
}

/**
 * Where the verifier reaches the agent: the given address and port, the part left out taken from the
 * registrar record (Keylime's tenant `init_add`).
 * @throws InvalidParameterValue when neither names an address or a port.
 */
export function agentContact(agent: Pick<RegisteredAgent, 'agentId' | 'ip' | 'port'>, given: { ip?: string; port?: number } = {}): { ip: string; port: number } {
  const ip = given.ip ?? agent.ip;
  const port = given.port ?? agent.port;
  if (ip === null || ip === '' || port === null) {
    throw new InvalidParameterValue('agent', `${agent.agentId}: no contact address was given or registered`);
  }
  return { ip: ip.replace(/^\[(.*)\]$/, '$1'), port };
}
