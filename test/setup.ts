// Loaded by mocha before any test file (.mocharc.json): tsyringe and class-validator need the
// reflect-metadata polyfill before any decorated class is evaluated.
import 'reflect-metadata';
import { usePrecomputedRsaKeys } from '../lib/pki/rsa-key-source.js';
import { rsaKeyPoolFromFile } from './helpers/rsa-key-pool.js';

// New RSA-2048 keys in this process come from the committed pool while it lasts, each key once, which
// spares the suite most of its key generation (fixtures/rsa-key-pool/README.md); child processes (the
// CLI, agents) generate their own. IRONLIME_TEST_FRESH_RSA_KEYS=1 generates every key afresh.
if (process.env['IRONLIME_TEST_FRESH_RSA_KEYS'] !== '1') {
  usePrecomputedRsaKeys(rsaKeyPoolFromFile());
}
