import { parseAgentState } from '../attestation/agent-state.js';
import { parseTpmPolicy } from '../attestation/tpm-policy.js';
import { parseJsonBody } from '../http/json-guard.js';
import { compileRuntimePolicy } from '../ima/compiled-policy.js';
import { parseFlatAllowlist } from '../ima/internal/legacy-allowlist.js';
import { parseExcludeList } from '../ima/exclude-matcher.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { asText, vectorFolder } from './fuzz-seeds.js';
import { isTypedFuzzError, JSON_TOKENS, textOf, type FuzzTarget } from './fuzz-target-kit.js';

/** Issue 11 item 1: a backtracking-prone exclude and the path that makes it slow. */
export const REDOS_POLICY = JSON.stringify({
  meta: { version: 1, generator: 0 },
  release: 0,
  digests: { '/usr/bin/x': ['0'.repeat(64)] },
  excludes: ['/(a+)+$'],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});

/** Fuzz targets of the policies: runtime policies (all their forms) and tpm_policy with the stored agent state. */
export const POLICY_FUZZ_TARGETS: readonly FuzzTarget[] = [
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
];
