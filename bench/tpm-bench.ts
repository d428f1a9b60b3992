import { createHash, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { TPM_ALG_ECDSA, TPM_ALG_RSASSA } from '../lib/tpm/constants.js';
import { tpmObjectName } from '../lib/tpm/object-name.js';
import { buildQuote } from '../lib/tpm-access/software/sign-quote.js';
import { derEcdsaSignature } from '../lib/tpm/tpm-signature-check.js';
import { AK_TEMPLATE_ECC_P256, AK_TEMPLATE_RSA_2048 } from '../lib/tpm-access/software/templates.js';
import { tpmtPublicFromKey } from '../lib/tpm/tpmt-public-key.js';
import { parseTpmtSignature, isEccSignature } from '../lib/tpm/tpmt-signature.js';
import { verifyQuote } from '../lib/tpm/verify-quote.js';
import type { Benchmark } from './benchmark.js';

/**
 * `npm run bench -- tpm [cpu-seconds]`: quote checks per CPU-second (one core), next to the bare node:crypto
 * signature verification of the same TPMS_ATTEST with the same key, measured in the same run.
 *
 * - bare: `crypto.verify(sha256, attest, key, signature)` with the signature already in the form
 *   OpenSSL wants (DER for ECDSA) — the floor any quote check pays;
 * - full: `verifyQuote` on the raw bytes a Keylime agent sends (TPMS_ATTEST, TPMT_SIGNATURE, 668-byte
 *   PCR blob with 13 sha256 PCRs) with the AK as a cached KeyObject: parse the signature and the PCR
 *   blob, check scheme and hash, verify the signature, parse the attest, compare the nonce, compare
 *   the selection, hash the PCR values and compare with pcrDigest, check the clock.
 *
 * The target is full ≥ 60% of bare.
 */

interface Case {
  readonly label: string;
  readonly key: KeyObject;
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrBlob: Uint8Array;
  readonly nonce: Uint8Array;
}

const PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 16];

function makeCase(label: string, keyType: 'rsa' | 'ec'): Case {
  const pair = keyType === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const akName = tpmObjectName(tpmtPublicFromKey(pair.publicKey, keyType === 'rsa' ? AK_TEMPLATE_RSA_2048 : AK_TEMPLATE_ECC_P256));
  const nonce = new Uint8Array(Buffer.from('Ai5M5SjYjnkyv4P7itH1', 'ascii'));
  const pcrs = new Map(PCRS.map((i) => [i, new Uint8Array(createHash('sha256').update(`pcr ${i}`).digest())]));
  const parts = buildQuote({
    akPrivateKey: pair.privateKey,
    akName,
    sigAlg: keyType === 'rsa' ? TPM_ALG_RSASSA : TPM_ALG_ECDSA,
    hashAlg: 'sha256',
    pcrs,
    nonce,
    clockInfo: { clock: 1_000_000n, resetCount: 1, restartCount: 0, safe: true },
  });
  return { label, key: pair.publicKey, nonce, ...parts };
}

/** CPU time this process has used, in nanoseconds (user + system). */
function cpuNanos(): bigint {
  const { user, system } = process.cpuUsage();
  return BigInt(user + system) * 1000n;
}

/**
 * Calls per CPU-second of `a` and `b`, measured in alternating batches of process CPU time (not wall
 * time), so that other processes on a busy machine neither slow one side nor skew the ratio.
 */
function rates(seconds: number, a: () => void, b: () => void): [number, number] {
  const batch = 200;
  for (let i = 0; i < 200; i += 1) {
    a();
    b();
  }
  let timeA = 0n;
  let timeB = 0n;
  let batches = 0;
  const budget = BigInt(Math.round(seconds * 1e9));
  while (timeA + timeB < budget) {
    let start = cpuNanos();
    for (let i = 0; i < batch; i += 1) {
      a();
    }
    timeA += cpuNanos() - start;
    start = cpuNanos();
    for (let i = 0; i < batch; i += 1) {
      b();
    }
    timeB += cpuNanos() - start;
    batches += 1;
  }
  return [(batches * batch) / (Number(timeA) / 1e9), (batches * batch) / (Number(timeB) / 1e9)];
}

export const tpmBenchmark: Benchmark = {
  name: 'tpm',
  description: 'quote checks per second (RSA-2048, ECC P-256) vs bare node:crypto verify',
  async run(args) {
    const seconds = Number(args[0] ?? '2');
    const previousClock = { clock: 999_000n, resetCount: 1, restartCount: 0, safe: true };
    for (const c of [makeCase('RSA-2048 RSASSA-SHA256', 'rsa'), makeCase('ECC P-256 ECDSA-SHA256', 'ec')]) {
      const parsed = parseTpmtSignature(c.signature);
      const bareSig = isEccSignature(parsed) ? derEcdsaSignature(parsed.signatureR, parsed.signatureS) : parsed.sig;
      const input = { akPublic: c.key, attest: c.attest, signature: c.signature, pcrBlob: c.pcrBlob, nonce: c.nonce, hashAlg: 'sha256', previousClock };
      if (!verifyQuote(input).valid || !verify('sha256', c.attest, c.key, bareSig)) {
        throw new Error(`${c.label}: the generated quote does not verify`);
      }
      const [bare, full] = rates(
        seconds,
        () => verify('sha256', c.attest, c.key, bareSig),
        () => verifyQuote(input),
      );
      process.stdout.write(
        `${c.label}: verifyQuote ${full.toFixed(0)}/s, bare crypto.verify ${bare.toFixed(0)}/s, ratio ${(100 * full / bare).toFixed(1)}%\n`,
      );
    }
  },
};
