// Loaded by mocha before any test file (.mocharc.json): tsyringe and class-validator need the
// reflect-metadata polyfill before any decorated class is evaluated.
import 'reflect-metadata';
import { usePrecomputedRsaKeys } from '../lib/pki/rsa-key-source.js';
import { useTokenHashIterationsForTests } from '../lib/verifier/push/token-hash.js';
import { rsaKeyPoolFromFile } from './helpers/rsa-key-pool.js';

// New RSA-2048 keys in this process come from the committed pool while it lasts, each key once, which
// spares the suite most of its key generation (fixtures/rsa-key-pool/README.md); child processes (the
// CLI, agents) generate their own. IRONLIME_TEST_FRESH_RSA_KEYS=1 generates every key afresh.
if (process.env['IRONLIME_TEST_FRESH_RSA_KEYS'] !== '1') {
  usePrecomputedRsaKeys(rsaKeyPoolFromFile());
}

// Push session tokens in this process hash with 1,000 PBKDF2 rounds, not 600,000 (a few hundred ms of
// a core per session, in some forty files); child processes (the CLI) keep 600,000.
// test/verifier/push-token-hash-iterations.test.ts checks what production does.
export const TEST_TOKEN_HASH_ITERATIONS = 1_000;
useTokenHashIterationsForTests(TEST_TOKEN_HASH_ITERATIONS);
