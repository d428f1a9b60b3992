import { expect } from 'chai';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openTpm2ToolsTpm, type Tpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import type { AkInfo, EkInfo, TpmHashAlgorithm } from '../../lib/tpm-access/tpm-port.js';
import { makeCredential } from '../../lib/tpm/make-credential.js';
import { verifyProofOfPossession } from '../../lib/tpm/proof-of-possession.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { marshalPcrBlob } from '../../lib/tpm/pcr-blob.js';
import { parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { verifyQuote } from '../../lib/tpm/verify-quote.js';
import { checkQuoteWithTools, flipByte, listHandles, runTool, startTestSwtpm, type SwtpmFixture } from './tpm-test-helpers.js';

/** PCRs locality 0 may extend: all but the DRTM PCRs 17–22 (PC Client PTP Table 4). */
const EXTENDABLE = [...Array(17).keys(), 23];

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; responseCode?: number }> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error & { code?: string },
  );
}

function expectValid(verdict: ReturnType<typeof verifyQuote>): void {
  expect(verdict.valid ? 'valid' : verdict.reason).to.equal('valid');
}

function alnum(length: number): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return new Uint8Array(Buffer.from(Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join(''), 'ascii'));
}

describe('tpm2-tools TPM adapter (real swtpm)', function () {
  this.timeout(120_000);
  let fixture: SwtpmFixture;
  let tpm: Tpm2ToolsTpm;
  let ek: EkInfo;
  const aks = new Map<TpmHashAlgorithm, AkInfo>();

  before(async () => {
    fixture = await startTestSwtpm();
    tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    ek = await tpm.ensureEk();
    aks.set('sha1', await tpm.ensureAk('sha1'));
    aks.set('sha256', await tpm.ensureAk('sha256'));
  });

  after(async () => {
    await tpm?.close();
    await fixture?.cleanup();
  });

  it('persists the AK at 0x8100010b as a restricted RSASSA-SHA256 key and reuses it from a new adapter', async () => {
    const ak = aks.get('sha256') as AkInfo;
    expect(ak.handle).to.equal(0x8100010b);
    expect(ak.signAlg).to.equal('rsassa');
    const pub = parseTpm2bPublic(ak.akPublic);
    expect(pub.objectAttributes).to.equal(0x00050072);
    expect(pub.type === 0x0001 && pub.parameters.scheme).to.deep.equal({ scheme: 0x0014, hashAlg: 0x000b });
    expect(ak.akName).to.deep.equal(tpmObjectName(pub));
    expect(await listHandles(fixture.swtpm.tcti, 'handles-persistent')).to.include.members(['0x8100010b', '0x81000104']);
    const other = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      const again = await other.ensureAk('sha256');
      expect(again.akName).to.deep.equal(ak.akName);
      expect(again.akPublic).to.deep.equal(ak.akPublic);
    } finally {
      await other.close();
    }
  });

  it('replaces a key at the AK handle that lacks userWithAuth instead of reusing it', async () => {
    const handle = '0x8100030b';
    const cwd = await mkdtemp(path.join(tmpdir(), 'ironlime-foreign-ak-'));
    const other = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti, akHandleBase: 0x81000300 });
    try {
      const tcti = fixture.swtpm.tcti;
      const created = await runTool('tpm2_createprimary', [
        '-C', 'o', '-G', 'rsa2048:rsassa-sha256:null', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|restricted|sign', '-c', 'key.ctx',
      ], { tcti, cwd });
      expect(created.status, created.stderr).to.equal(0);
      expect((await runTool('tpm2_evictcontrol', ['-C', 'o', '-c', 'key.ctx', handle], { tcti, cwd })).status).to.equal(0);
      await runTool('tpm2_flushcontext', ['-t'], { tcti });
      expect(await listHandles(tcti, 'handles-persistent')).to.include(handle);
      const ak = await other.ensureAk('sha256');
      expect(ak.handle).to.equal(0x8100030b);
      expect(parseTpm2bPublic(ak.akPublic).objectAttributes).to.equal(0x00050072);
    } finally {
      await other.close();
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('extends, reads and resets PCR 16 like the TPM spec says', async () => {
    const digest = new Uint8Array(randomBytes(32));
    await tpm.resetPcr(16);
    await tpm.extendPcr(16, 'sha256', digest);
    const expected = createHash('sha256').update(new Uint8Array(32)).update(digest).digest();
    expect((await tpm.readPcrs('sha256', [16])).get(16)).to.deep.equal(new Uint8Array(expected));
    await tpm.resetPcr(16);
    expect((await tpm.readPcrs('sha256', [16])).get(16)).to.deep.equal(new Uint8Array(32));
    const error = await rejection(tpm.resetPcr(10));
    expect(error.code).to.equal('ERR_TPM_ACCESS');
    expect(error.message).to.equal('PCR 10 cannot be reset from locality 0 (only 16 and 23)');
  });

  it('random extends, nonces and masks: verifyQuote and tpm2_checkquote both accept every quote', async () => {
    for (let round = 0; round < 8; round += 1) {
      const hashAlg: TpmHashAlgorithm = round % 2 === 0 ? 'sha256' : 'sha1';
      const size = hashAlg === 'sha256' ? 32 : 20;
      for (let i = 0; i < 3; i += 1) {
        await tpm.extendPcr(EXTENDABLE[randomInt(EXTENDABLE.length)] as number, hashAlg, new Uint8Array(randomBytes(size)));
      }
      const pcrs = [...new Set(Array.from({ length: 1 + randomInt(12) }, () => randomInt(24)))];
      const nonce = alnum(1 + randomInt(64));
      const ak = aks.get(hashAlg) as AkInfo;
      const quote = await tpm.quote({ nonce, pcrs, hashAlg });
      const verdict = verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg });
      expect(verdict.valid, `round ${round}: ${verdict.valid ? '' : verdict.reason}`).to.equal(true);
      expect([...(verdict.valid ? verdict.pcrs.keys() : [])]).to.deep.equal([...pcrs].sort((a, b) => a - b));
      expect(await checkQuoteWithTools(ak.akPublic, quote, nonce, hashAlg), `round ${round}`).to.equal(true);
    }
  });

  describe('tampered quotes: both verifiers refuse', () => {
    const nonce = alnum(20);
    const pcrs = [0, 7, 10, 16];

    async function bothRefuse(
      parts: { attest: Uint8Array; signature: Uint8Array; pcrBlob: Uint8Array },
      options: { akPublic?: Uint8Array; nonce?: Uint8Array; hashAlg?: TpmHashAlgorithm } = {},
    ): Promise<string> {
      const akPublic = options.akPublic ?? (aks.get('sha256') as AkInfo).akPublic;
      const verdict = verifyQuote({ akPublic, ...parts, nonce: options.nonce ?? nonce, hashAlg: options.hashAlg ?? 'sha256' });
      expect(verdict.valid).to.equal(false);
      expect(await checkQuoteWithTools(akPublic, parts, options.nonce ?? nonce, options.hashAlg ?? 'sha256'), `tpm2_checkquote after ${verdict.valid ? '' : verdict.failedCheck}`).to.equal(false);
      return verdict.valid ? '' : verdict.failedCheck;
    }

    it('a flipped byte in the attest (pcrDigest), the signature or a PCR value', async () => {
      const quote = await tpm.quote({ nonce, pcrs, hashAlg: 'sha256' });
      expect(await checkQuoteWithTools((aks.get('sha256') as AkInfo).akPublic, quote, nonce, 'sha256')).to.equal(true);
      expect(await bothRefuse({ ...quote, attest: flipByte(quote.attest, quote.attest.length - 1) })).to.equal('signature');
      expect(await bothRefuse({ ...quote, signature: flipByte(quote.signature, 100) })).to.equal('signature');
      // 132-byte selection + u32 count + u32 digest count + u16 size: the first byte of PCR 0's value.
      expect(await bothRefuse({ ...quote, pcrBlob: flipByte(quote.pcrBlob, 132 + 4 + 4 + 2) })).to.equal('pcr-digest');
    });

    it('a wrong nonce, a wrong AK, a signature claiming another hash algorithm', async () => {
      const quote = await tpm.quote({ nonce, pcrs, hashAlg: 'sha256' });
      expect(await bothRefuse(quote, { nonce: alnum(20) })).to.equal('nonce');
      expect(await bothRefuse(quote, { akPublic: (aks.get('sha1') as AkInfo).akPublic })).to.equal('signature');
      // TPMT_SIGNATURE = sigAlg u16 ‖ hashAlg u16 ‖ …: relabel the SHA-256 signature as SHA-1.
      const relabelled = quote.signature.slice();
      relabelled.set([0x00, 0x04], 2);
      expect(await bothRefuse({ ...quote, signature: relabelled })).to.equal('hash-alg');
      expect(await bothRefuse({ ...quote, signature: relabelled }, { hashAlg: 'sha1' })).to.equal('signature');
    });

    it('a verifier that asked for SHA-1 gets SHA-256: verifyQuote refuses, tpm2_checkquote does not look', async () => {
      // Stricter on purpose: tpm2_checkquote takes the hash from the signature and ignores -g, while
      // verifyQuote pins the algorithm the verifier asked for (downgrade protection).
      const quote = await tpm.quote({ nonce, pcrs, hashAlg: 'sha256' });
      const verdict = verifyQuote({ akPublic: (aks.get('sha256') as AkInfo).akPublic, ...quote, nonce, hashAlg: 'sha1' });
      expect(verdict.valid ? '' : verdict.failedCheck).to.equal('hash-alg');
      expect(await checkQuoteWithTools((aks.get('sha256') as AkInfo).akPublic, quote, nonce, 'sha1')).to.equal(true);
    });

    it('a PCR that changed between the quote and the PCR read', async () => {
      const quote = await tpm.quote({ nonce, pcrs, hashAlg: 'sha256' });
      await tpm.extendPcr(7, 'sha256', new Uint8Array(randomBytes(32)));
      const pcrBlob = marshalPcrBlob('sha256', await tpm.readPcrs('sha256', pcrs));
      expect(await bothRefuse({ ...quote, pcrBlob })).to.equal('pcr-digest');
    });
  });

  it('activates a lib/tpm makeCredential blob and returns the secret', async () => {
    const ak = await tpm.ensureAk('sha256');
    const secret = alnum(32);
    const blob = makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret });
    expect(await tpm.activateCredential(blob)).to.deep.equal(secret);
  });

  it('refuses a blob made for another AK name, and leaves no session or object behind', async () => {
    await tpm.ensureAk('sha256');
    const blob = makeCredential({ ekPublic: ek.ekPublic, akName: (aks.get('sha1') as AkInfo).akName, secret: alnum(32) });
    const error = await rejection(tpm.activateCredential(blob));
    expect(error.code).to.equal('ERR_TPM_ACCESS');
    expect(error.message).to.match(/^tpm2_activatecredential: .*\[TPM rc 0x[0-9a-f]{8}\]$/);
    expect(error.responseCode).to.be.a('number');
    for (const what of ['handles-transient', 'handles-loaded-session', 'handles-saved-session']) {
      expect(await listHandles(fixture.swtpm.tcti, what), what).to.deep.equal([]);
    }
  });

  it('refuses a malformed credential blob before it reaches the TPM', async () => {
    const error = await rejection(tpm.activateCredential(new Uint8Array([0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 2])));
    expect(error.code).to.equal('ERR_TPM_PARSE');
    expect(error.message).to.equal('credential blob: at offset 8: version 2 is not 1');
  });

  it('quotes 25 times and creates keys and sessions repeatedly without exhausting TPM slots', async () => {
    for (let i = 0; i < 25; i += 1) {
      await tpm.quote({ nonce: alnum(20), pcrs: [16], hashAlg: 'sha256' });
    }
    const ak = await tpm.ensureAk('sha256');
    for (let i = 0; i < 4; i += 1) {
      const secret = alnum(32);
      expect(await tpm.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
    }
    for (const what of ['handles-transient', 'handles-loaded-session', 'handles-saved-session']) {
      expect(await listHandles(fixture.swtpm.tcti, what), what).to.deep.equal([]);
    }
  });

  it('certifies its persisted AK with a raw TPM2_Certify (tpm2_send) that the push verifier accepts, loading nothing', async () => {
    const ak = aks.get('sha256') as AkInfo;
    for (let i = 0; i < 10; i += 1) {
      const challenge = randomBytes(16);
      const proof = await tpm.certifyAk('sha256', challenge);
      expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature })).to.deep.equal({ valid: true });
      const replayed = verifyProofOfPossession({ akTpm: ak.akPublic, challenge: randomBytes(16), message: proof.attest, signature: proof.signature });
      expect(replayed.valid).to.equal(false);
      const otherAk = verifyProofOfPossession({ akTpm: (aks.get('sha1') as AkInfo).akPublic, challenge, message: proof.attest, signature: proof.signature });
      expect(otherAk.valid).to.equal(false);
    }
    for (const what of ['handles-transient', 'handles-loaded-session', 'handles-saved-session']) {
      expect(await listHandles(fixture.swtpm.tcti, what), what).to.deep.equal([]);
    }
  });

  it('keeps working across an swtpm restart', async () => {
    await fixture.swtpm.restart();
    const nonce = alnum(20);
    const quote = await tpm.quote({ nonce, pcrs: [0, 16], hashAlg: 'sha256' });
    const ak = await tpm.ensureAk('sha256');
    expect(ak.akName).to.deep.equal((aks.get('sha256') as AkInfo).akName);
    expectValid(verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg: 'sha256' }));
  });

  it('rejects bad arguments with ERR_TPM_ACCESS before calling any tool', async () => {
    const cases: Array<[Promise<unknown>, string]> = [
      [tpm.extendPcr(24, 'sha256', new Uint8Array(32)), 'PCR index 24 is not an integer from 0 to 23'],
      [tpm.extendPcr(16, 'sha256', new Uint8Array(20)), 'a sha256 digest has 32 bytes, got 20'],
      [tpm.quote({ nonce: new Uint8Array(65), pcrs: [16], hashAlg: 'sha256' }), 'nonce of 65 bytes exceeds 64'],
      [tpm.quote({ nonce: new Uint8Array(1), pcrs: [], hashAlg: 'sha256' }), 'a quote needs at least one PCR'],
      [tpm.readPcrs('md5' as TpmHashAlgorithm, [0]), 'hash algorithm "md5" is not one of sha1, sha256, sha384, sha512'],
    ];
    for (const [promise, message] of cases) {
      const error = await rejection(promise);
      expect(error.code).to.equal('ERR_TPM_ACCESS');
      expect(error.message).to.equal(message);
    }
  });

  it('uses the ECC EK (swtpm: P-384 at 0x81010016) and an ECDSA AK when asked', async () => {
    const ecc = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti, ekAlgorithm: 'ecc' });
    try {
      const eccEk = await ecc.ensureEk();
      expect(eccEk.ekAlgorithm).to.equal('ecc');
      expect(eccEk.ekCertificate).to.not.equal(null);
      const ak = await ecc.ensureAk('sha256');
      expect(ak.handle).to.equal(0x8100020b);
      expect(ak.signAlg).to.equal('ecdsa');
      const nonce = alnum(20);
      const quote = await ecc.quote({ nonce, pcrs: [0, 16], hashAlg: 'sha256' });
      expectValid(verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg: 'sha256' }));
      expect(await checkQuoteWithTools(ak.akPublic, quote, nonce, 'sha256')).to.equal(true);
      const secret = alnum(32);
      expect(await ecc.activateCredential(makeCredential({ ekPublic: eccEk.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
      const challenge = randomBytes(16);
      const proof = await ecc.certifyAk('sha256', challenge);
      expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature, signAlg: 'ecdsa' })).to.deep.equal({ valid: true });
    } finally {
      await ecc.close();
    }
  });

  it('close() removes the work directory and later calls fail', async () => {
    const other = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    const workDir = (other as unknown as { ctx: { workDir: string } }).ctx.workDir;
    expect(existsSync(workDir)).to.equal(true);
    await other.close();
    expect(existsSync(workDir)).to.equal(false);
    const error = await rejection(other.readPcrs('sha256', [0]));
    expect(error.code).to.equal('ERR_TPM_ACCESS');
    expect(error.message).to.equal('the TPM adapter is closed');
  });
});

describe('tpm2-tools TPM adapter on a TPM that needs TPM2_Startup (real swtpm)', function () {
  this.timeout(60_000);
  let fixture: SwtpmFixture;

  before(async () => {
    fixture = await startTestSwtpm({ startup: false, manufactureEk: false });
  });

  after(async () => {
    await fixture?.cleanup();
  });

  it('sends TPM2_Startup after TPM_RC_INITIALIZE, before and after a restart, with an EK re-created from its template', async () => {
    const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      const ek = await tpm.ensureEk();
      expect(ek.ekCertificate).to.equal(null);
      const ak = await tpm.ensureAk('sha256');
      await fixture.swtpm.restart();
      const nonce = alnum(20);
      const quote = await tpm.quote({ nonce, pcrs: [16], hashAlg: 'sha256' });
      expectValid(verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg: 'sha256' }));
      await fixture.swtpm.restart();
      const secret = alnum(32);
      expect(await tpm.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
      expect(await listHandles(fixture.swtpm.tcti, 'handles-transient')).to.deep.equal([]);
    } finally {
      await tpm.close();
    }
  });

  it('certifies its AK on a TPM the adapter started: TPM_RC_INITIALIZE leads to TPM2_Startup, the TPM_RC_RETRY that follows to a resend', async () => {
    const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      const ak = await tpm.ensureAk('sha256');
      await tpm.certifyAk('sha256', randomBytes(16)); // the AK is now cached: certifyAk's first tool is tpm2_send
      await fixture.swtpm.restart();
      const challenge = randomBytes(16);
      const proof = await tpm.certifyAk('sha256', challenge);
      expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature })).to.deep.equal({ valid: true });
    } finally {
      await tpm.close();
    }
  });
});
