import { checkAttestation, checkAuthRequest, checkResourcePath } from '../broker/kbs-request-checks.js';
import { validateDto, type DtoClass } from '../http/dto-validation.js';
import { parseJsonBody } from '../http/json-guard.js';
import { IdentityQuoteQuery, IntegrityQuoteQuery, UkeyBody, VkeyBody } from '../agent/agent-dtos.js';
import { ActivateAgentBody, AgentIdParams, RegisterAgentBody } from '../registrar/registrar-dtos.js';
import { AddAgentBody, MbPolicyBody, RuntimePolicyBody } from '../verifier/verifier-dtos.js';
import { EvidenceBody } from '../verifier/verify-route-dtos.js';
import { asText, vectorFiles } from './fuzz-seeds.js';
import { isTypedFuzzError, JSON_TOKENS, textOf, type FuzzTarget } from './fuzz-target-kit.js';
import { REDOS_POLICY } from './policy-fuzz-targets.js';
import { EK_PUBLICS } from './tpm-fuzz-targets.js';

function deepJson(depth: number): string {
  return `{"auth_tag":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

/** A JSON-body target: each of `checks` gets the parsed body and may refuse it only with a typed error. */
function jsonBodyTarget(name: string, description: string, checks: readonly ((value: unknown) => unknown)[], seeds: () => string[], tokens: readonly string[] = JSON_TOKENS): FuzzTarget {
  return {
    name,
    description,
    kind: 'text',
    tokens,
    seeds: () => [...seeds(), '{"auth_tag":{"constructor":{}}}', deepJson(10_000), '{"agent_id":"__proto__"}', '{"agent_id":".."}', ''],
    run(input) {
      const text = textOf(input);
      const value = text.length === 0 ? {} : parseJsonBody(text);
      for (const check of checks) {
        try {
          check(value);
        } catch (error) {
          if (!isTypedFuzzError(error)) {
            throw error;
          }
        }
      }
    },
  };
}

/** A target over request DTOs, validated as a service validates a body. */
function httpTarget(name: string, description: string, dtos: readonly DtoClass<object>[], seeds: () => string[]): FuzzTarget {
  return jsonBodyTarget(
    name,
    description,
    dtos.map((dto) => (value: unknown) => validateDto(dto, value, 'body')),
    seeds,
  );
}

/** Fuzz targets of the HTTP request bodies: the registrar, verifier and agent DTOs and the broker's KBS checks. */
export const HTTP_FUZZ_TARGETS: readonly FuzzTarget[] = [
  httpTarget('http-registrar', 'registrar request bodies and path parameters (RegisterAgentBody, ActivateAgentBody, AgentIdParams)', [RegisterAgentBody, ActivateAgentBody, AgentIdParams], () => {
    const ek = EK_PUBLICS()[0];
    return [
      JSON.stringify({ ek_tpm: Buffer.from(ek ?? []).toString('base64'), aik_tpm: 'AAAA', ip: '127.0.0.1', port: 9002, mtls_cert: 'disabled' }),
      JSON.stringify({ auth_tag: 'a'.repeat(96) }),
      JSON.stringify({ agent_id: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000' }),
    ];
  }),
  httpTarget('http-verifier', 'verifier request bodies (AddAgentBody, EvidenceBody, RuntimePolicyBody, MbPolicyBody)', [AddAgentBody, EvidenceBody, RuntimePolicyBody, MbPolicyBody], () => {
    const quote = asText(vectorFiles('keylime/tpm/checkquote/quote_wire_format.txt'))[0]?.trim() ?? 'r::';
    return [
      JSON.stringify({ type: 'tpm', data: { quote, nonce: 'abc', hash_alg: 'sha256', tpm_ak: 'AAAA', runtime_policy: REDOS_POLICY, ima_measurement_list: '' } }),
      JSON.stringify({ cloudagent_ip: '127.0.0.1', cloudagent_port: 9002, tpm_policy: '{}', runtime_policy: '', mb_policy: '', ak_tpm: 'AAAA', mtls_cert: 'disabled', supported_version: '2.6', accept_tpm_hash_algs: ['sha256'], accept_tpm_encryption_algs: ['rsa'], accept_tpm_signing_algs: ['rsassa'] }),
      JSON.stringify({ runtime_policy: Buffer.from(REDOS_POLICY).toString('base64') }),
    ];
  }),
  httpTarget('http-agent', 'agent queries and bodies (quotes, ukey, vkey)', [IdentityQuoteQuery, IntegrityQuoteQuery, UkeyBody, VkeyBody], () => [
    JSON.stringify({ nonce: 'abc123', mask: '0x408400', partial: '1', ima_ml_entry: '0' }),
    JSON.stringify({ encrypted_key: 'AAAA', auth_tag: 'ab'.repeat(48), payload: 'AAAA' }),
  ]),
  jsonBodyTarget(
    'http-kbs',
    "the broker's KBS request checks on the hot routes (Request, Attestation, resource path): the fast path, then the class-validator DTOs",
    [checkAuthRequest, checkAttestation, checkResourcePath],
    () => [
      JSON.stringify({ version: '0.4.0', tee: 'tpm', 'extra-params': {} }),
      JSON.stringify({
        'runtime-data': { nonce: 'AAAA', 'tee-pubkey': { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } },
        'tee-evidence': { primary_evidence: { agent_id: 'node-1', quote: 'rAAAA:AAAA:AAAA', hash_alg: 'sha256', ima_measurement_list: '', mb_measurement_list: 'AAAA' }, additional_evidence: '{}' },
        'init-data': { format: 'json', body: '{}' },
      }),
      JSON.stringify({ repository: 'default', type: 'key', tag: 'disk' }),
    ],
    [...JSON_TOKENS, '"runtime-data"', '"tee-evidence"', '"primary_evidence"', '"tee-pubkey"', '"init-data"', '"r"', '":"'],
  ),
];
