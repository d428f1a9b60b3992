import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { TpmParseError } from '../../lib/bytes/parse-errors.js';
import {
  TPM_ALG_ECDSA,
  TPM_ALG_RSAPSS,
  TPM_ALG_RSASSA,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
} from '../../lib/tpm/constants.js';
import { marshalPcrBlob } from '../../lib/tpm/pcr-blob.js';
import { formatQuoteString, parseQuoteString } from '../../lib/tpm/quote-string.js';
import { verifyQuoteSignatureAhead, type SignatureVerdict } from '../../lib/tpm/signature-verdict.js';
import { buildQuote, signAsTpm } from '../../lib/tpm-access/software/sign-quote.js';
import { signingKeyFrom } from '../../lib/tpm/tpm-signature-check.js';
import { marshalTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { marshalTpmtSignature } from '../../lib/tpm/tpmt-signature.js';
import { verifyQuote, type QuoteVerdict, type VerifyQuoteInput } from '../../lib/tpm/verify-quote.js';
import {
  GCE_ATTESTATIONS,
  GCE_BANKS,
  gceQuote,
  keylimeCheckquote,
  keylimeLegacy,
  toHex,
  windowsQuote,
} from './tpm-vectors.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const ascii = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'ascii'));

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = bytes.slice();
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

function expectRejected(verdict: QuoteVerdict, check: string, message: RegExp): void {
  expect(verdict.valid, 'expected a rejection').to.equal(false);
  if (!verdict.valid) {
    expect(verdict.failedCheck).to.equal(check);
    expect(verdict.reason).to.match(message);
    expect(verdict.eventId).to.equal('qoute_validation.quote_validation');
  }
}

describe('verifyQuote: Keylime tpm_util_test.py::test_checkquote', () => {
  const cq = keylimeCheckquote();
  const input: VerifyQuoteInput = {
    akPublic: cq.akPem, attest: cq.attest, signature: cq.signature, pcrBlob: cq.pcrBlob, nonce: cq.nonce, hashAlg: 'sha256',
  };

  it('accepts the quote and returns the verified PCR 16 and clock info', () => {
    const verdict = verifyQuote(input);
    expect(verdict.valid).to.equal(true);
    if (verdict.valid) {
      expect(verdict.hashAlg).to.equal('sha256');
      expect(verdict.pcrBank).to.equal('sha256');
      expect([...verdict.pcrs.keys()]).to.deep.equal([16]);
      expect(toHex(verdict.pcrs.get(16) as Uint8Array)).to.equal('d471c0674951f0ef075aecdd42fbefa6eca6019820add0bd222d1c4e6242ce6f');
      // tpm2_objects_test.py::test_unmarshal_tpms_attest
      expect(verdict.clockInfo).to.deep.equal({ clock: 1284787942n, resetCount: 3, restartCount: 0, safe: true });
    }
  });

  it('accepts the same quote in the wire format', () => {
    const parts = parseQuoteString(cq.wire);
    expect(verifyQuote({ ...input, ...parts }).valid).to.equal(true);
  });

  it('rejects the quote with byte 5 flipped: signature', () => {
    expectRejected(verifyQuote({ ...input, attest: flip(cq.attest, 5) }), 'signature', /does not verify/);
  });

  it('rejects the nonce "ai5M5SjYjnkyv4P7itH1": nonce', () => {
    expectRejected(verifyQuote({ ...input, nonce: ascii('ai5M5SjYjnkyv4P7itH1') }), 'nonce', /extraData does not match/);
  });

  it('throws TpmParseError for the PCR blob with byte 5 flipped (bank 0x010b is no hash)', () => {
    expect(() => verifyQuote({ ...input, pcrBlob: flip(cq.pcrBlob, 5) }))
      .to.throw(TpmParseError, /bank 0x010b is not a known hash/)
      .with.property('code', 'ERR_TPM_PARSE');
  });

  it('rejects hash_alg sha1: hash-alg', () => {
    expectRejected(verifyQuote({ ...input, hashAlg: 'sha1' }), 'hash-alg', /sha256 is not the expected sha1/);
  });

  it('rejects a different AK: signature', () => {
    expectRejected(verifyQuote({ ...input, akPublic: keylimeLegacy('ak.pub') }), 'signature', /does not verify/);
  });

  it('rejects a pinned RSAPSS scheme for this RSASSA signature: signature-scheme', () => {
    expectRejected(verifyQuote({ ...input, signAlg: 'rsapss' }), 'signature-scheme', /rsassa is not the expected rsapss/);
  });

  it('rejects a tampered PCR value: pcr-digest', () => {
    const pcrBlob = marshalPcrBlob('sha256', new Map([[16, new Uint8Array(32)]]));
    expectRejected(verifyQuote({ ...input, pcrBlob }), 'pcr-digest', /do not hash to the quoted pcrDigest/);
  });

  it('rejects a PCR blob that selects other PCRs: pcr-selection', () => {
    const pcrBlob = marshalPcrBlob('sha256', new Map([[15, new Uint8Array(32)]]));
    expectRejected(verifyQuote({ ...input, pcrBlob }), 'pcr-selection', /PCR blob selects sha256:15, the quote sha256:16/);
  });

  describe('clock checks against the previous quote (clock 1284787942, resetCount 3, restartCount 0)', () => {
    const previous = { clock: 1284787000, resetCount: 3, restartCount: 0, safe: 1 };
    it('accepts a later clock', () => {
      expect(verifyQuote({ ...input, previousClock: previous }).valid).to.equal(true);
    });
    it('rejects the same clock', () => {
      expectRejected(verifyQuote({ ...input, previousClock: { ...previous, clock: 1284787942n } }), 'clock', /not after the previous/);
    });
    it('rejects a decreased resetCount', () => {
      expectRejected(verifyQuote({ ...input, previousClock: { ...previous, resetCount: 4 } }), 'clock', /resetCount went back from 4 to 3/);
    });
    it('rejects a decreased restartCount without a reset', () => {
      expectRejected(verifyQuote({ ...input, previousClock: { ...previous, restartCount: 2 } }), 'clock', /restartCount went back/);
    });
    it('accepts restartCount back to 0 after a TPM reset, even with an earlier clock (both counters changed)', () => {
      expect(verifyQuote({ ...input, previousClock: { clock: 9e12, resetCount: 2, restartCount: 5, safe: true } }).valid).to.equal(true);
    });
  });
});

describe('verifyQuote: keylime test-data/files (tpm2-tools quote, AK as TPM2B_PUBLIC)', () => {
  const input: VerifyQuoteInput = {
    akPublic: keylimeLegacy('ak.pub'),
    attest: keylimeLegacy('quote.out'),
    signature: keylimeLegacy('quotesig.out'),
    pcrBlob: keylimeLegacy('quotepcr.out'),
    nonce: keylimeLegacy('rand.out'),
    hashAlg: 'sha256',
  };

  it('accepts it with the AK as TPM2B_PUBLIC, PEM or a cached KeyObject, and returns PCRs 15, 16, 22', () => {
    const pem = Buffer.from(keylimeLegacy('akpub.pem')).toString('utf8');
    for (const akPublic of [input.akPublic, pem, createPublicKey(pem), signingKeyFrom(input.akPublic)]) {
      const verdict = verifyQuote({ ...input, akPublic });
      expect(verdict.valid).to.equal(true);
      if (verdict.valid) {
        expect([...verdict.pcrs.keys()]).to.deep.equal([15, 16, 22]);
        expect(toHex(verdict.pcrs.get(16) as Uint8Array)).to.equal('9dbb22387e019c04da95477333546082ce313152c4a7f8a6e1d5f0c77f4fb6f0');
        expect(toHex(verdict.pcrs.get(22) as Uint8Array)).to.equal('ff'.repeat(32));
      }
    }
  });
});

describe('verifyQuote: go-tpm-tools GCE COS 85 quotes (pcrDigest hashed with the signature hash)', () => {
  for (const attestation of GCE_ATTESTATIONS) {
    for (const bank of GCE_BANKS) {
      it(`${attestation}: ${bank} bank quote signed with RSASSA-SHA256 verifies over PCR 0-23`, () => {
        const q = gceQuote(attestation, bank);
        const verdict = verifyQuote({
          akPublic: q.akTpmtPublic, attest: q.attest, signature: q.signature,
          pcrBlob: marshalPcrBlob(bank, q.pcrs), nonce: q.nonce, hashAlg: 'sha256',
        });
        expect(verdict.valid, verdict.valid ? '' : verdict.reason).to.equal(true);
        if (verdict.valid) {
          expect(verdict.pcrBank).to.equal(bank);
          expect(verdict.pcrs.size).to.equal(24);
          expect(verdict.pcrs.get(0)).to.deep.equal(q.pcrs.get(0));
        }
      });
    }
  }

  it('rejects the nonce-0x9009 quote with no nonce: nonce', () => {
    const q = gceQuote('gce-cos-85-nonce9009', 'sha256');
    const verdict = verifyQuote({
      akPublic: q.akTpmtPublic, attest: q.attest, signature: q.signature,
      pcrBlob: marshalPcrBlob('sha256', q.pcrs), nonce: new Uint8Array(0), hashAlg: 'sha256',
    });
    expectRejected(verdict, 'nonce', /extraData/);
  });
});

describe('verifyQuote: go-attestation windows_gcp_shielded_vm.json', () => {
  const w = windowsQuote();
  const input: VerifyQuoteInput = {
    akPublic: w.akTpmtPublic, attest: w.attest, signature: w.signature,
    pcrBlob: marshalPcrBlob('sha1', w.pcrs), nonce: new Uint8Array(0), hashAlg: 'sha1',
  };

  it('accepts the RSASSA-SHA1 quote over SHA1 PCR 0-23 with an empty nonce', () => {
    const verdict = verifyQuote(input);
    expect(verdict.valid).to.equal(true);
    if (verdict.valid) {
      expect(verdict.pcrBank).to.equal('sha1');
      expect(verdict.pcrs.size).to.equal(24);
    }
  });

  it('rejects the AK creation attestation signed by the same AK: attest-type', () => {
    expectRejected(verifyQuote({ ...input, attest: w.createAttestation, signature: w.createSignature }), 'attest-type', /0x801a is not TPM_ST_ATTEST_QUOTE/);
  });
});

describe('verifyQuote: generated quotes (ECDSA, RSAPSS) and signed garbage', () => {
  const clockInfo = { clock: 1000n, resetCount: 1, restartCount: 0, safe: true };
  const pcrs = new Map([[0, new Uint8Array(32).fill(1)], [10, new Uint8Array(32).fill(2)], [16, new Uint8Array(32).fill(3)]]);
  const nonce = ascii('n0nce');
  const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = newRsaKeyPairSync();
  const akName = new Uint8Array(34);

  it('accepts an ECDSA P-256 quote and rejects it as RSASSA-pinned', () => {
    const parts = buildQuote({ akPrivateKey: ecc.privateKey, akName, sigAlg: TPM_ALG_ECDSA, hashAlg: 'sha256', pcrs, nonce, clockInfo });
    expect(verifyQuote({ akPublic: ecc.publicKey, ...parts, nonce, hashAlg: 'sha256' }).valid).to.equal(true);
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, ...parts, nonce, hashAlg: 'sha256', signAlg: 'rsassa' }), 'signature-scheme', /not the expected rsassa/);
  });

  it('accepts an RSAPSS quote', () => {
    const parts = buildQuote({ akPrivateKey: rsa.privateKey, akName, sigAlg: TPM_ALG_RSAPSS, hashAlg: 'sha384', bank: 'sha256', pcrs, nonce, clockInfo });
    expect(verifyQuote({ akPublic: rsa.publicKey, ...parts, nonce, hashAlg: 'sha384' }).valid).to.equal(true);
  });

  it('rejects an RSA signature checked with an ECC AK: signature-scheme', () => {
    const parts = buildQuote({ akPrivateKey: rsa.privateKey, akName, sigAlg: TPM_ALG_RSASSA, hashAlg: 'sha256', pcrs, nonce, clockInfo });
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, ...parts, nonce, hashAlg: 'sha256' }), 'signature-scheme', /rsassa is not accepted for a ec key/);
  });

  it('rejects a quote whose clock is not safe: clock', () => {
    const parts = buildQuote({ akPrivateKey: ecc.privateKey, akName, sigAlg: TPM_ALG_ECDSA, hashAlg: 'sha256', pcrs, nonce, clockInfo: { ...clockInfo, safe: false } });
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, ...parts, nonce, hashAlg: 'sha256' }), 'clock', /safe is 0/);
  });

  it('rejects validly signed bytes that are no TPMS_ATTEST: attest-structure', () => {
    const garbage = ascii('not an attestation structure');
    const signature = marshalTpmtSignature(signAsTpm(ecc.privateKey, TPM_ALG_ECDSA, 0x000b, garbage));
    const pcrBlob = marshalPcrBlob('sha256', pcrs);
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, attest: garbage, signature, pcrBlob, nonce, hashAlg: 'sha256' }), 'attest-structure', /magic 0x6e6f7420/);
  });

  it('rejects a signed certify attestation: attest-type', () => {
    const attest = marshalTpmsAttest({
      magic: TPM_GENERATED_VALUE, type: TPM_ST_ATTEST_CERTIFY, qualifiedSigner: akName, extraData: nonce, clockInfo,
      firmwareVersion: 0n, attested: { name: akName, qualifiedName: akName },
    });
    const signature = marshalTpmtSignature(signAsTpm(ecc.privateKey, TPM_ALG_ECDSA, 0x000b, attest));
    const pcrBlob = marshalPcrBlob('sha256', pcrs);
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, attest, signature, pcrBlob, nonce, hashAlg: 'sha256' }), 'attest-type', /0x8017/);
  });
});

describe('verifyQuote with a signature verified ahead (verifyQuoteSignatureAhead)', () => {
  const clockInfo = { clock: 1000n, resetCount: 1, restartCount: 0, safe: true };
  const pcrs = new Map([[0, new Uint8Array(32).fill(1)], [10, new Uint8Array(32).fill(2)]]);
  const nonce = ascii('n0nce');
  const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = newRsaKeyPairSync();
  const akName = new Uint8Array(34);
  const quoteOf = (parts: { attest: Uint8Array; signature: Uint8Array; pcrBlob: Uint8Array }): string => formatQuoteString(parts);

  it('gives the same answer as the synchronous check, for ECDSA, RSASSA and RSAPSS, good and tampered', async () => {
    for (const [key, sigAlg] of [[ecc, TPM_ALG_ECDSA], [rsa, TPM_ALG_RSASSA], [rsa, TPM_ALG_RSAPSS]] as const) {
      const parts = buildQuote({ akPrivateKey: key.privateKey, akName, sigAlg, hashAlg: 'sha256', pcrs, nonce, clockInfo });
      const good = verifyQuoteSignatureAhead(key.publicKey, quoteOf(parts));
      expect(good?.valid, `${sigAlg} good`).to.equal(true);
      const forged = { ...parts, attest: flip(parts.attest, 40) };
      const bad = verifyQuoteSignatureAhead(key.publicKey, quoteOf(forged));
      expect(bad?.valid, `${sigAlg} forged`).to.equal(false);
      expect(verifyQuote({ akPublic: key.publicKey, ...parts, nonce, hashAlg: 'sha256', signatureVerdict: good }).valid).to.equal(true);
      expectRejected(verifyQuote({ akPublic: key.publicKey, ...forged, nonce, hashAlg: 'sha256', signatureVerdict: bad }), 'signature', /does not verify/);
    }
  });

  it('is used only for the very key object, signature and attest it answered: anything else is verified afresh', async () => {
    const parts = buildQuote({ akPrivateKey: ecc.privateKey, akName, sigAlg: TPM_ALG_ECDSA, hashAlg: 'sha256', pcrs, nonce, clockInfo });
    const good = verifyQuoteSignatureAhead(ecc.publicKey, quoteOf(parts));
    // A "valid" verdict about the genuine quote does not carry over to forged bytes or another signature.
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, ...parts, attest: flip(parts.attest, 40), nonce, hashAlg: 'sha256', signatureVerdict: good }), 'signature', /does not verify/);
    const other = buildQuote({ akPrivateKey: ecc.privateKey, akName, sigAlg: TPM_ALG_ECDSA, hashAlg: 'sha256', pcrs, nonce: ascii('other'), clockInfo });
    expectRejected(verifyQuote({ akPublic: ecc.publicKey, ...parts, signature: other.signature, nonce, hashAlg: 'sha256', signatureVerdict: good }), 'signature', /does not verify/);
    // A "not valid" verdict made with another key object (even for the same key) is not taken either.
    const lying = { ...(good as SignatureVerdict), valid: false };
    expect(verifyQuote({ akPublic: ecc.publicKey, ...parts, nonce, hashAlg: 'sha256', signatureVerdict: lying }).valid).to.equal(false);
    const sameKeyOtherObject = createPublicKey(ecc.publicKey.export({ format: 'pem', type: 'spki' }));
    expect(verifyQuote({ akPublic: sameKeyOtherObject, ...parts, nonce, hashAlg: 'sha256', signatureVerdict: lying }).valid).to.equal(true);
    expect(verifyQuoteSignatureAhead(ecc.publicKey, 'not a quote')).to.equal(undefined);
    expect(verifyQuoteSignatureAhead(ecc.publicKey, 42)).to.equal(undefined);
  });
});
