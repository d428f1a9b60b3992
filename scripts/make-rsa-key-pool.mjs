#!/usr/bin/env node
// Writes fixtures/rsa-key-pool/keys.txt: COUNT fresh RSA-2048 keys (e = 65537) from node:crypto, one
// `<p>:<q>` line each (the two primes, base64url), for the test processes to use instead of generating
// keys (see fixtures/rsa-key-pool/README.md). Usage: node scripts/make-rsa-key-pool.mjs [COUNT]
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const count = Number(process.argv[2] ?? '600');
if (!Number.isInteger(count) || count < 1) {
  throw new Error(`COUNT must be a positive whole number, not ${process.argv[2]}`);
}
const file = resolve(fileURLToPath(new URL('..', import.meta.url)), 'fixtures', 'rsa-key-pool', 'keys.txt');
const lines = [];
for (let i = 0; i < count; i += 1) {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey.export({ format: 'jwk' });
  lines.push(`${jwk.p}:${jwk.q}\n`);
}
writeFileSync(file, lines.join(''));
