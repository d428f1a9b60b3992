import { generateKeyPairSync } from 'node:crypto';
import { checkAttestation, checkAuthRequest, checkResourcePath } from '../broker/kbs-request-checks.js';
import { validateDto, type DtoClass } from '../http/dto-validation.js';
import { parseJsonBody } from '../http/json-guard.js';
import { IronlimeError } from '../../interfaces/errors.js';
import { readPublicKeyBlob, UnsupportedImaKey } from '../ima/ima-keyring.js';
import { parseImaAsciiList } from '../ima/ascii-list-parser.js';
import { parseImaBinaryList } from '../ima/binary-list-parser.js';
import { encodeImaBinaryList } from '../ima/internal/binary-list-writer.js';
import { compileRuntimePolicy } from '../ima/compiled-policy.js';
import { parseImaSignature } from '../ima/internal/ima-signature.js';
import { parseFlatAllowlist } from '../ima/internal/legacy-allowlist.js';
import { parseExcludeList } from '../ima/exclude-matcher.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { verifyImaList } from '../ima/verify-ima-list.js';
import { parseAgentState } from '../attestation/agent-state.js';
import { parseTpmPolicy } from '../attestation/tpm-policy.js';
import { parseEventLogInput } from '../mb/event-log-input.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import { IdentityQuoteQuery, IntegrityQuoteQuery, UkeyBody, VkeyBody } from '../agent/agent-dtos.js';
import { ActivateAgentBody, AgentIdParams, RegisterAgentBody } from '../registrar/registrar-dtos.js';
import { AddAgentBody, MbPolicyBody, RuntimePolicyBody } from '../verifier/verifier-dtos.js';
import { EvidenceBody } from '../verifier/verify-route-dtos.js';
import { loadDefaultCertStore } from '../pki/cert-store-files.js';
import { certificatesDer, type CertStore } from '../tpm/cert-store.js';
import { readDerCertificate } from '../tpm/certificate-quirks.js';
import { parseCredentialBlob } from '../tpm/credential-blob.js';
import { makeCredential } from '../tpm/make-credential.js';
import { ekPublicMatchesCertificate, verifyEkCertificate } from '../tpm/ek-certificate.js';
import { tpmObjectName } from '../tpm/object-name.js';
import { parsePcrBlob } from '../tpm/pcr-blob.js';
import { parseQuoteString } from '../tpm/quote-string.js';
import { parseTpmsAttest } from '../tpm/tpms-attest.js';
import { parseTpmtSignature } from '../tpm/tpmt-signature.js';
import { parseTpm2bPublic, publicKeyFromTpmtPublic } from '../tpm/tpmt-public.js';
import { withCorruptKeyAlgorithm } from './corrupt-certificate.js';
import { asText, packageFiles, vectorFiles, vectorFolder } from './fuzz-seeds.js';

/**
 * One fuzz target: a parser (or DTO) that takes untrusted input, its seeds, and `run`, which feeds it
 * one input the way a service does. `run` returning or throwing a typed error (`IronlimeError`, or the
 * few typed classes its callers handle) is fine; anything else is a finding.
 */
export interface FuzzTarget {
  readonly name: string;
  readonly description: string;
  readonly kind: 'bytes' | 'text';
  /** Tokens that mean something in the format, inserted by the text mutator. */
  readonly tokens?: readonly string[];
  seeds(): readonly (Uint8Array | string)[];
  run(input: Uint8Array | string): void;
}

const bytesOf = (input: Uint8Array | string): Uint8Array => (typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
const textOf = (input: Uint8Array | string): string => (typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));

let vendorStore: CertStore | undefined;
const store = (): CertStore => (vendorStore ??= loadDefaultCertStore());

const JSON_TOKENS = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '-1', '1e999', '"__proto__"', '"constructor"', '"prototype"', '\\u0000', '"\\ud800"', '[[[[[[[[', '{"a":'];
const IMA_TOKENS = ['10', ' ', 'ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig', 'sha1:', 'sha256:', 'sha512:', ':', '00', 'ff', 'zz', '/usr/bin/x', '\n', '\r\n', '\t', 'boot_aggregate'];

/** Issue 11 item 1: a backtracking-prone exclude and the path that makes it slow. */
const REDOS_POLICY = JSON.stringify({
  meta: { version: 1, generator: 0 },
  release: 0,
  digests: { '/usr/bin/x': ['0'.repeat(64)] },
  excludes: ['/(a+)+$'],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});

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

/** Errors a target may throw: the project's typed errors. */
export function isTypedFuzzError(error: unknown): boolean {
  return error instanceof IronlimeError;
}

/** Issue 11 item 5: each certificate with corrupt public-key algorithm bytes (those that have the OID). */
function corrupted(certs: readonly Uint8Array[]): Uint8Array[] {
  return certs.flatMap((der) => {
    try {
      return [withCorruptKeyAlgorithm(der)];
    } catch {
      return [];
    }
  });
}

const EK_PUBLICS = (): Uint8Array[] =>
  vectorFiles('keylime/tpm/tpm2_objects/infineon_rsa_ek.tpm2b_public.bin', 'keylime/tpm/tpm2_objects/infineon_ecc_ek.tpm2b_public.bin');

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'tpm-public',
    description: 'TPM2B_PUBLIC (EK, AK): parse, public key, object name',
    kind: 'bytes',
    seeds: () => [...vectorFolder('keylime/tpm/tpm2_objects', /tpm2b_public/), ...vectorFiles('keylime/tpm/legacy_test_data_files/ek.pub', 'keylime/tpm/legacy_test_data_files/ak.pub')],
    run(input) {
      const pub = parseTpm2bPublic(bytesOf(input));
      publicKeyFromTpmtPublic(pub);
      tpmObjectName(pub);
    },
  },
  {
    name: 'tpm-attest',
    description: 'TPMS_ATTEST (quotes, certify)',
    kind: 'bytes',
    seeds: () => [...vectorFiles('keylime/tpm/checkquote/quote.tpms_attest.bin', 'keylime/tpm/legacy_test_data_files/quote.out'), ...vectorFolder('go-tpm-tools/attestations/gce-cos-85-nonce9009.extracted', /tpms_attest/)],
    run: (input) => void parseTpmsAttest(bytesOf(input)),
  },
  {
    name: 'tpm-signature',
    description: 'TPMT_SIGNATURE',
    kind: 'bytes',
    seeds: () => [...vectorFiles('keylime/tpm/checkquote/quote.tpmt_signature.bin', 'keylime/tpm/legacy_test_data_files/quotesig.out'), ...vectorFolder('go-tpm-tools/attestations/gce-cos-85-nonce9009.extracted', /tpmt_signature/)],
    run: (input) => void parseTpmtSignature(bytesOf(input)),
  },
  {
    name: 'pcr-blob',
    description: 'tpm2-tools PCR blob of a quote',
    kind: 'bytes',
    seeds: () => vectorFiles('keylime/tpm/checkquote/quote.pcrs.tpm2tools.bin', 'keylime/tpm/legacy_test_data_files/quotepcr.out'),
    run: (input) => void parsePcrBlob(bytesOf(input)),
  },
  {
    name: 'quote-string',
    description: "Keylime quote string r<attest>:<signature>:<pcrs> and its three parts",
    kind: 'text',
    tokens: ['r', ':', '=', '==', 'AAAA', '/', '+', '\n'],
    seeds: () => [...asText(vectorFiles('keylime/tpm/checkquote/quote_wire_format.txt', 'rust-keylime/test-quote.txt')).map((t) => t.trim()), 'r::', 'r'],
    run(input) {
      const parts = parseQuoteString(textOf(input));
      parseTpmsAttest(parts.attest);
      parseTpmtSignature(parts.signature);
      parsePcrBlob(parts.pcrBlob);
    },
  },
  {
    name: 'credential-blob',
    description: 'MakeCredential blob (TPM2B_ID_OBJECT + TPM2B_ENCRYPTED_SECRET)',
    kind: 'bytes',
    seeds: () =>
      EK_PUBLICS().map((ek) => makeCredential({ ekPublic: parseTpm2bPublic(ek), akName: new Uint8Array(34).fill(0x0b, 0, 2), secret: new Uint8Array(32).fill(0x41) })),
    run: (input) => void parseCredentialBlob(bytesOf(input)),
  },
  {
    name: 'ek-cert',
    description: 'EK certificates (DER/PEM/chains): read, key match, vendor-store check',
    kind: 'bytes',
    seeds() {
      const certs = vectorFolder('keylime/ek_certs', /\.(der|pem)$/);
      const corrupt = corrupted(certs);
      // Issue 11 item 13: a private key where a certificate is expected.
      const signkey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' });
      return [...certs, ...corrupt, Buffer.from(signkey)];
    },
    run(input) {
      const data = bytesOf(input);
      const ders = certificatesDer(data);
      for (const der of ders.slice(0, 4)) {
        readDerCertificate(der);
      }
      verifyEkCertificate(data, store(), { intermediates: ders.slice(1, 4) });
      for (const ekPublic of EK_PUBLICS()) {
        ekPublicMatchesCertificate(ekPublic, data);
      }
    },
  },
  {
    name: 'ima-ascii',
    description: 'IMA ASCII measurement lists: parse and replay',
    kind: 'text',
    tokens: IMA_TOKENS,
    seeds: () => [
      ...asText(vectorFolder('keylime/ima/verification', /\.ascii$/)),
      ...asText(vectorFolder('keylime/ima/ast', /\.ascii$/)),
      ...asText(vectorFiles('rust-keylime/invalid_ima_log.txt')),
      `10 ${'0'.repeat(40)} ima-ng sha256:${'0'.repeat(64)} /${'a'.repeat(28)}!`,
    ],
    run(input) {
      const text = textOf(input);
      parseImaAsciiList(text);
      verifyImaList({ listText: text });
    },
  },
  {
    name: 'ima-binary',
    description: 'IMA binary measurement lists',
    kind: 'bytes',
    seeds() {
      const texts = asText(vectorFolder('keylime/ima/verification', /\.ascii$/));
      return texts.flatMap((text) => {
        try {
          return [encodeImaBinaryList(parseImaAsciiList(text))];
        } catch {
          return [];
        }
      });
    },
    run: (input) => void parseImaBinaryList(bytesOf(input)),
  },
  {
    name: 'ima-key',
    description: 'keys and certificates of ima-buf keyring lines, IMA signatures',
    kind: 'bytes',
    seeds: () => [...vectorFolder('keylime/ima/verification/ima_keys', /./), ...corrupted(vectorFolder('keylime/ek_certs', /\.der$/))],
    run(input) {
      const data = Buffer.from(bytesOf(input));
      try {
        readPublicKeyBlob(data);
      } catch (error) {
        // The one caller (entry-validator.ts) turns UnsupportedImaKey into an invalid-key failure event.
        if (!(error instanceof UnsupportedImaKey)) {
          throw error;
        }
      }
      parseImaSignature(data);
    },
  },
  {
    name: 'event-log',
    description: 'UEFI / TCG event logs (binary or base64)',
    kind: 'bytes',
    seeds: () => [
      ...vectorFiles('keylime/measured_boot/binary_bios_measurements', 'keylime/measured_boot/binary_bios_measurements-secureboot', 'keylime/measured_boot/binary_bios_measurements-bogus', 'rust-keylime/uefi_log.bin'),
      ...vectorFolder('tpm2-tools', /^event.*\.bin$/),
      ...packageFiles('fixtures/eventlogs/ubuntu-2104-no-secure-boot.bin'),
    ],
    run: (input) => void parseEventLogInput(bytesOf(input)),
  },
  {
    name: 'refstate',
    description: 'measured-boot reference states (Keylime create_mb_refstate JSON)',
    kind: 'text',
    tokens: [...JSON_TOKENS, '"scrtm_and_bios"', '"kernel_cmdline"', '"mokdig"', '"pk"', '"kek"', '"db"', '"dbx"', '"(a+)+$"', '"sha256"'],
    seeds: () => asText(vectorFiles('keylime/measured_boot/example_reference_state.json')),
    run: (input) => void parseMbRefstate(textOf(input)),
  },
  {
    name: 'runtime-policy',
    description: 'runtime policies (JSON, DSSE-signed, flat allowlists, exclude lists), compiled',
    kind: 'text',
    tokens: [...JSON_TOKENS, '"digests"', '"excludes"', '"keyrings"', '"ima-buf"', '"meta"', '"version"', '"(a+)+$"', '"(?P<x>a)"', '"\\\\"', '"payload"', '"signatures"'],
    seeds: () => [
      ...asText(vectorFolder('keylime/ima/verification', /^runtime_policy.*\.json$/)),
      ...asText(vectorFolder('keylime/runtime_policy/create-runtime-policy', /^(policy|allowlist)-/)),
      REDOS_POLICY,
    ],
    run(input) {
      const text = textOf(input);
      compileRuntimePolicy(loadRuntimePolicy(text).policy);
      parseFlatAllowlist(text);
      parseExcludeList(text);
    },
  },
  {
    name: 'tpm-policy',
    description: 'tpm_policy JSON and stored agent state',
    kind: 'text',
    tokens: [...JSON_TOKENS, '"mask"', '"0x408400"', '"10"', '"23"', '"24"'],
    seeds: () => ['{"mask":"0x408400","15":["0000000000000000000000000000000000000000"]}', '{}', '{"22":["ff"]}'],
    run(input) {
      const text = textOf(input);
      try {
        parseAgentState(parseJsonBody(text));
      } catch (error) {
        if (!isTypedFuzzError(error)) {
          throw error;
        }
      }
      parseTpmPolicy(text);
    },
  },
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
