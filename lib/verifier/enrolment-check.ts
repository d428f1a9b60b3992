import { InvalidParameterValue } from '../../interfaces/errors.js';
import { enteringAkPublicKey } from '../attestation/agent-policies.js';
import { parseTpmPolicy } from '../attestation/tpm-policy.js';
import { parseCountedJson } from '../bytes/parse-counted-json.js';
import { AGENT_API_VERSIONS } from '../http/api-version.js';
import { ADMIN_MAX_JSON_VALUES } from '../http/json-guard.js';
import { loadPolicyVerificationKey } from '../ima/dsse-envelope.js';
import { ImaKeyring } from '../ima/ima-keyring.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import { IMA_PCR, maskHasPcr } from '../tpm/keylime-profile.js';
import type { AddAgentBody, RuntimePolicyBody } from './verifier-dtos.js';
import { sha256 } from './policy-cache.js';
import type { StoredMbPolicy, StoredRuntimePolicy } from './verifier-policy-repository.js';
import { V_KEY_BYTES } from './v-key.js';

/** A policy an enrolment refers to: a new one to store, or an existing one by name, or none. */
export type PolicyReference<T> = { readonly kind: 'new'; readonly policy: T } | { readonly kind: 'existing'; readonly name: string } | { readonly kind: 'none' };

/** An enrolment body whose every field was parsed and judged. */
export interface CheckedEnrolment {
  readonly runtime: PolicyReference<StoredRuntimePolicy>;
  readonly mb: PolicyReference<StoredMbPolicy>;
  readonly supportedVersion: string;
}

/**
 * Parses every field of an enrolment (spec §4.1) before anything is stored, so a bad field is a 400
 * naming it and nothing changes: the `tpm_policy`, the AK (a short or ROCA RSA AK refused), V, the runtime policy (JSON, DSSE-signed
 * with `runtime_policy_key`, or a flat allowlist — stored normalised as runtime-policy JSON), the
 * refstate, the IMA keyring and the metadata JSON. Policies without a name are stored under the
 * agent id, as Keylime does. An unsupported `supported_version` falls back to the newest agent API.
 *
 * Stricter than Keylime: an enrolment with a runtime policy (new or stored by name) or IMA signature
 * keys whose `tpm_policy` mask leaves out PCR 10 is refused. Keylime accepts it and then never checks
 * the IMA list, because the quote does not cover it (issue 11 item 2); Keylime's own tenant always
 * adds PCR 10 with either, so only a hand-made or foreign request is refused.
 */
export function checkEnrolment(agentId: string, body: AddAgentBody): CheckedEnrolment {
  if (body.mtls_cert === undefined && body.attestation_mode !== 'push') {
    // Keylime's wording (`enable_agent_mtls` is always on here).
    throw new InvalidParameterValue('body.mtls_cert', 'mTLS certificate for agent is required!');
  }
  const tpmPolicy = parseTpmPolicy(body.tpm_policy, 'body.tpm_policy');
  enteringAkPublicKey(body.ak_tpm);
  if (body.v !== undefined && body.v !== null && Buffer.from(body.v, 'base64').length !== V_KEY_BYTES) {
    throw new InvalidParameterValue('body.v', `must be ${V_KEY_BYTES} bytes of base64`);
  }
  const imaKeys = body.ima_sign_verification_keys !== undefined && body.ima_sign_verification_keys.trim() !== '';
  if (imaKeys) {
    ImaKeyring.fromJson(body.ima_sign_verification_keys, 'body.ima_sign_verification_keys');
  }
  if (body.metadata !== undefined) {
    parseJsonField(body.metadata, 'body.metadata');
  }
  const policyText = Buffer.from(body.runtime_policy, 'base64').toString('utf8');
  const runtimeName = nonEmpty(body.runtime_policy_name);
  const runtime: PolicyReference<StoredRuntimePolicy> =
    policyText.trim() === ''
      ? runtimeName === undefined
        ? { kind: 'none' }
        : { kind: 'existing', name: runtimeName }
      : { kind: 'new', policy: checkRuntimePolicy(runtimeName ?? agentId, { runtime_policy: body.runtime_policy, ...keyOf(body) }, 'body') };
  if ((runtime.kind !== 'none' || imaKeys) && !maskHasPcr(tpmPolicy.mask, IMA_PCR)) {
    throw new InvalidParameterValue(
      'body.tpm_policy.mask',
      `must include PCR ${IMA_PCR} (0x${(1 << IMA_PCR).toString(16)}) when ${runtime.kind === 'none' ? 'IMA signature keys are' : 'a runtime policy is'} given: without PCR ${IMA_PCR} in the quote the IMA list cannot be checked`,
    );
  }
  const mbText = body.mb_policy ?? '';
  const mbName = nonEmpty(body.mb_policy_name);
  const mb: PolicyReference<StoredMbPolicy> =
    mbText.trim() === '' || mbText.trim() === 'null'
      ? mbName === undefined
        ? { kind: 'none' }
        : { kind: 'existing', name: mbName }
      : { kind: 'new', policy: checkMbPolicy(mbName ?? agentId, mbText) };
  const requested = body.supported_version;
  const supportedVersion = requested !== undefined && AGENT_API_VERSIONS.includes(requested) ? requested : (AGENT_API_VERSIONS.at(-1) as string);
  return { runtime, mb, supportedVersion };
}

/**
 * A runtime policy as given to `POST /allowlists/{name}` or an enrolment: base64 of a runtime-policy
 * JSON document, a DSSE envelope (verified with `runtime_policy_key`, base64 of a PEM key or
 * certificate) or a flat allowlist. Stored as the policy's JSON with its checksum and generator.
 * @throws RuntimePolicyError, PolicySignatureError
 */
export function checkRuntimePolicy(name: string, body: Pick<RuntimePolicyBody, 'runtime_policy' | 'runtime_policy_key' | 'tpm_policy'>, where: string): StoredRuntimePolicy {
  const text = Buffer.from(body.runtime_policy, 'base64').toString('utf8');
  const keyText = body.runtime_policy_key === undefined ? '' : Buffer.from(body.runtime_policy_key, 'base64').toString('utf8');
  const loaded = loadRuntimePolicy(text, keyText.trim() === '' ? {} : { signingKey: loadPolicyVerificationKey(keyText) });
  const runtimePolicy = JSON.stringify(loaded.policy);
  if (body.tpm_policy !== undefined && body.tpm_policy !== null && body.tpm_policy !== '') {
    parseTpmPolicy(body.tpm_policy, `${where}.tpm_policy`);
  }
  return {
    name,
    runtimePolicy,
    checksum: sha256(runtimePolicy),
    generator: loaded.policy.meta.generator,
    tpmPolicy: body.tpm_policy === undefined || body.tpm_policy === '' ? null : body.tpm_policy,
  };
}

/** A refstate (Keylime `example` format) as JSON text. @throws MbRefstateError */
export function checkMbPolicy(name: string, text: string): StoredMbPolicy {
  parseMbRefstate(text);
  return { name, mbPolicy: text };
}

function keyOf(body: AddAgentBody): { runtime_policy_key?: string } {
  return body.runtime_policy_key === undefined ? {} : { runtime_policy_key: body.runtime_policy_key };
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

/** Checks that `text` is JSON, its values counted first (an admin's field, bounded as an admin body is). */
function parseJsonField(text: string, field: string): void {
  parseCountedJson(text, ADMIN_MAX_JSON_VALUES, {
    excess: (reason) => new InvalidParameterValue(field, reason),
    notJson: (cause) => new InvalidParameterValue(field, 'must be JSON text', { cause }),
  });
}
