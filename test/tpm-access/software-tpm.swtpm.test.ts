import { expect } from 'chai';
import { X509Certificate, createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { TpmHashAlgorithm } from '../../lib/tpm-access/tpm-port.js';
import { marshalCredentialBlob, parseCredentialBlob } from '../../lib/tpm/credential-blob.js';
import { kdfa } from '../../lib/tpm/kdf.js';
import { aesCfb, makeCredential } from '../../lib/tpm/make-credential.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { parseTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { parseTpm2bPublic, type TpmtPublic } from '../../lib/tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic } from '../../lib/tpm/tpmt-public-key.js';
import { verifyQuote } from '../../lib/tpm/verify-quote.js';
import { vectorPath } from '../helpers/paths.js';
import { checkQuoteWithTools, flipByte } from './tpm-test-helpers.js';

// The software TPM needs no swtpm, but these tests compare it with tpm2-tools (tpm2_checkquote), so
// they live with the tool-backed tests.

function alnum(length: number): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return new Uint8Array(Buffer.from(Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join(''), 'ascii'));
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; responseCode?: number }> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error & { code?: string },
  );
}

/** Every field but the key itself. */
function withoutKey(pub: TpmtPublic): unknown {
  return { type: pub.type, nameAlg: pub.nameAlg, objectAttributes: pub.objectAttributes, authPolicy: pub.authPolicy, parameters: pub.parameters };
}

describe('software TPM', function () {
  this.timeout(60_000);
  let ca: SoftwareEkCa;
  let rsa: SoftwareTpm;
  let ecc: SoftwareTpm;

  before(async () => {
    ca = SoftwareEkCa.create();
    [rsa, ecc] = await Promise.all([
      createSoftwareTpm({ issueEkCertificate: (key) => ca.issue(key) }),
      createSoftwareTpm({ ekAlgorithm: 'ecc' }),
    ]);
  });

  it('has an EK with the TCG L-1 template (as in Keylime test-data ek.pub) and a certificate from its CA', async () => {
    const ek = await rsa.ensureEk();
    const reference = parseTpm2bPublic(readFileSync(vectorPath('keylime', 'tpm', 'legacy_test_data_files', 'ek.pub')));
    const pub = parseTpm2bPublic(ek.ekPublic);
    expect(withoutKey(pub)).to.deep.equal(withoutKey(reference));
    const cert = new X509Certificate(ek.ekCertificate as Uint8Array);
    expect(cert.verify(new X509Certificate(ca.certificatePem).publicKey)).to.equal(true);
    expect(cert.publicKey.export({ type: 'spki', format: 'der' })).to.deep.equal(publicKeyFromTpmtPublic(pub).export({ type: 'spki', format: 'der' }));
    expect(cert.toLegacyObject().ext_key_usage).to.deep.equal(['2.23.133.8.1']);
    const eccEk = await ecc.ensureEk();
    expect(eccEk.ekCertificate).to.equal(null);
    expect(parseTpm2bPublic(eccEk.ekPublic).objectAttributes).to.equal(0x000300b2);
  });

  it('creates the AK tpm2_createak would (as in Keylime test-data ak.pub), one per hash, stable', async () => {
    const ak = await rsa.ensureAk('sha256');
    const reference = parseTpm2bPublic(readFileSync(vectorPath('keylime', 'tpm', 'legacy_test_data_files', 'ak.pub')));
    const pub = parseTpm2bPublic(ak.akPublic);
    expect(withoutKey(pub)).to.deep.equal(withoutKey(reference));
    expect(ak.akName).to.deep.equal(tpmObjectName(pub));
    expect((await rsa.ensureAk('sha256')).akName).to.deep.equal(ak.akName);
    expect((await rsa.ensureAk('sha1')).akName).to.not.deep.equal(ak.akName);
  });

  it('starts PCRs at the PC Client reset values and extends like a TPM', async () => {
    const tpm = await createSoftwareTpm({ ekAlgorithm: 'ecc' });
    const values = await tpm.readPcrs('sha1', [0, 16, 17, 22, 23]);
    expect([...values.values()].map((v) => Buffer.from(v).toString('hex'))).to.deep.equal([
      '00'.repeat(20), '00'.repeat(20), 'ff'.repeat(20), 'ff'.repeat(20), '00'.repeat(20),
    ]);
    const digest = new Uint8Array(randomBytes(32));
    await tpm.extendPcr(23, 'sha256', digest);
    const expected = createHash('sha256').update(new Uint8Array(32)).update(digest).digest();
    expect((await tpm.readPcrs('sha256', [23])).get(23)).to.deep.equal(new Uint8Array(expected));
    await tpm.resetPcr(23);
    expect((await tpm.readPcrs('sha256', [23])).get(23)).to.deep.equal(new Uint8Array(32));
    const error = await rejection(tpm.readPcrs('sha384', [0]));
    expect(error.code).to.equal('ERR_TPM_ACCESS');
    expect(error.message).to.equal('PCR bank sha384 is not active (active: sha1, sha256)');
  });

  for (const family of ['rsa', 'ecc'] as const) {
    it(`${family}: random quotes verify with verifyQuote and with tpm2_checkquote`, async () => {
      const tpm = family === 'rsa' ? rsa : ecc;
      for (let round = 0; round < 6; round += 1) {
        const hashAlg: TpmHashAlgorithm = round % 2 === 0 ? 'sha256' : 'sha1';
        await tpm.extendPcr(randomInt(17), hashAlg, new Uint8Array(randomBytes(hashAlg === 'sha256' ? 32 : 20)));
        const ak = await tpm.ensureAk(hashAlg);
        const nonce = alnum(1 + randomInt(64));
        const pcrs = [...new Set(Array.from({ length: 1 + randomInt(12) }, () => randomInt(24)))];
        const quote = await tpm.quote({ nonce, pcrs, hashAlg });
        const verdict = verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg, signAlg: ak.signAlg });
        expect(verdict.valid ? 'valid' : verdict.reason).to.equal('valid');
        expect(await checkQuoteWithTools(ak.akPublic, quote, nonce, hashAlg), `round ${round}`).to.equal(true);
      }
    });
  }

  it('tampered software quotes are refused by both verifiers', async () => {
    const ak = await rsa.ensureAk('sha256');
    const nonce = alnum(20);
    const quote = await rsa.quote({ nonce, pcrs: [0, 16], hashAlg: 'sha256' });
    for (const bad of [
      { ...quote, attest: flipByte(quote.attest, quote.attest.length - 1) },
      { ...quote, signature: flipByte(quote.signature, 50) },
      { ...quote, pcrBlob: flipByte(quote.pcrBlob, 132 + 4 + 4 + 2) },
    ]) {
      expect(verifyQuote({ akPublic: ak.akPublic, ...bad, nonce, hashAlg: 'sha256' }).valid).to.equal(false);
      expect(await checkQuoteWithTools(ak.akPublic, bad, nonce, 'sha256')).to.equal(false);
    }
  });

  it('advances the clock, and reboot() resets PCRs and bumps resetCount', async () => {
    const tpm = await createSoftwareTpm({ ekAlgorithm: 'ecc' });
    await tpm.extendPcr(0, 'sha256', new Uint8Array(32).fill(1));
    const first = parseTpmsAttest((await tpm.quote({ nonce: alnum(4), pcrs: [0], hashAlg: 'sha256' })).attest);
    await new Promise((resolve) => setTimeout(resolve, 15));
    tpm.reboot();
    const second = parseTpmsAttest((await tpm.quote({ nonce: alnum(4), pcrs: [0], hashAlg: 'sha256' })).attest);
    expect(second.clockInfo.clock > first.clockInfo.clock).to.equal(true);
    expect([first.clockInfo.resetCount, second.clockInfo.resetCount, second.clockInfo.restartCount]).to.deep.equal([0, 1, 0]);
    expect(second.clockInfo.safe).to.equal(true);
    expect((await tpm.readPcrs('sha256', [0])).get(0)).to.deep.equal(new Uint8Array(32));
  });

  for (const family of ['rsa', 'ecc'] as const) {
    it(`${family}: activateCredential returns the secret of a lib/tpm makeCredential blob`, async () => {
      const tpm = family === 'rsa' ? rsa : ecc;
      const ek = await tpm.ensureEk();
      const ak = await tpm.ensureAk('sha256');
      const secret = alnum(32);
      expect(await tpm.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
    });
  }

  it('refuses a blob made for another AK (TPM_RC_INTEGRITY) and a malformed blob (parse error)', async () => {
    const ek = await rsa.ensureEk();
    const other = await rsa.ensureAk('sha1');
    await rsa.ensureAk('sha256');
    const error = await rejection(rsa.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: other.akName, secret: alnum(32) })));
    expect(error.code).to.equal('ERR_TPM_ACCESS');
    expect(error.responseCode).to.equal(0x09f);
    expect(error.message).to.equal('credential activation failed: integrity check of the credential failed (made for another AK or EK?)');
    const eccEk = await ecc.ensureEk();
    const foreign = await rejection(rsa.activateCredential(makeCredential({ ekPublic: eccEk.ekPublic, akName: other.akName, secret: alnum(32) })));
    expect(foreign.code).to.equal('ERR_TPM_ACCESS');
    const malformed = await rejection(rsa.activateCredential(new Uint8Array([0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1, 0xff, 0xff])));
    expect(malformed.code).to.equal('ERR_TPM_PARSE');
  });

  it('answers a seed that does not decrypt with TPM_RC_VALUE and a bad credential size with TPM_RC_SIZE', async () => {
    const [rsaEk, eccEk] = await Promise.all([rsa.ensureEk(), ecc.ensureEk()]);
    const [rsaAk, eccAk] = await Promise.all([rsa.ensureAk('sha256'), ecc.ensureAk('sha256')]);
    const foreign = await rejection(rsa.activateCredential(makeCredential({ ekPublic: eccEk.ekPublic, akName: rsaAk.akName, secret: alnum(32) })));
    expect([foreign.code, foreign.responseCode, foreign.message])
      .to.deep.equal(['ERR_TPM_ACCESS', 0x084, 'credential activation failed: the secret does not decrypt under the EK']);
    const eccBlob = makeCredential({ ekPublic: eccEk.ekPublic, akName: eccAk.akName, secret: alnum(32) });
    const offCurve = await rejection(ecc.activateCredential(flipByte(eccBlob, eccBlob.length - 1)));
    expect([offCurve.code, offCurve.responseCode, offCurve.message])
      .to.deep.equal(['ERR_TPM_ACCESS', 0x084, 'credential activation failed: the ephemeral point is not on the EK curve']);

    // A blob with a valid HMAC whose credential claims 40 bytes but holds 32: made from a known seed.
    const seed = new Uint8Array(randomBytes(32));
    const { encryptedSecret } = parseCredentialBlob(makeCredential({ ekPublic: rsaEk.ekPublic, akName: rsaAk.akName, secret: alnum(32), randomness: { seed } }));
    const plain = Buffer.concat([Buffer.from([0, 40]), alnum(32)]);
    const encIdentity = aesCfb(kdfa('sha256', seed, 'STORAGE', rsaAk.akName, new Uint8Array(0), 128), plain, false);
    const hmacKey = kdfa('sha256', seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
    const integrityHmac = new Uint8Array(createHmac('sha256', hmacKey).update(encIdentity).update(rsaAk.akName).digest());
    const badSize = await rejection(rsa.activateCredential(marshalCredentialBlob({ integrityHmac, encIdentity, encryptedSecret })));
    expect([badSize.code, badSize.responseCode, badSize.message])
      .to.deep.equal(['ERR_TPM_ACCESS', 0x095, 'credential activation failed: the decrypted credential has a bad size']);
  });

  it('refuses a malformed ECC point in the blob with a parse error naming the field', async () => {
    const ek = await ecc.ensureEk();
    const ak = await ecc.ensureAk('sha256');
    const blob = parseCredentialBlob(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret: alnum(32) }));
    const onlyX = marshalCredentialBlob({ ...blob, encryptedSecret: blob.encryptedSecret.subarray(0, 34) });
    const error = await rejection(ecc.activateCredential(onlyX));
    expect([error.code, error.message]).to.deep.equal(['ERR_TPM_PARSE', 'secret.y: at offset 34: need 2 byte(s), 0 left']);
  });
});
