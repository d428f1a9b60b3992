import { expect } from 'chai';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { activateCredential } from '../../lib/tpm-access/software/activate-credential.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { EK_TEMPLATE_RSA_2048 } from '../../lib/tpm-access/software/templates.js';
import { marshalTpm2bPublic, parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { tpmtPublicFromKey } from '../../lib/tpm/tpmt-public-key.js';
import { vectorPath } from '../helpers/paths.js';
import { keylimeLegacy, toHex } from './tpm-vectors.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { signingKeyFrom } from '../../lib/tpm/tpm-signature-check.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const run = (...args: string[]): Promise<CliRun> => runCli(args);

const checkquote = (file: string): string => vectorPath('keylime', 'tpm', 'checkquote', file);
const legacy = (file: string): string => vectorPath('keylime', 'tpm', 'legacy_test_data_files', file);

describe('ironlime tpm verify-quote', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-tpm-cli-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0 for Keylime\'s wire-format quote and prints PCR 16 as JSON', async () => {
    const result = await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--nonce', 'Ai5M5SjYjnkyv4P7itH1',
      '--quote', checkquote('quote_wire_format.txt'), '--json');
    expect(result.code).to.equal(0);
    expect(JSON.parse(result.stdout)).to.deep.equal({
      valid: true, reason: null, failedCheck: null, hashAlg: 'sha256', pcrBank: 'sha256',
      pcrs: { 16: 'd471c0674951f0ef075aecdd42fbefa6eca6019820add0bd222d1c4e6242ce6f' },
    });
  });

  it('exits 0 for the tpm2-tools files with the AK as TPM2B_PUBLIC and a hex nonce', async () => {
    const result = await run('tpm', 'verify-quote', '--ak', legacy('ak.pub'), '--nonce-hex', toHex(keylimeLegacy('rand.out')),
      '--message', legacy('quote.out'), '--signature', legacy('quotesig.out'), '--pcrs', legacy('quotepcr.out'));
    expect(result.code).to.equal(0);
    expect(result.stdout.split('\n')[0]).to.equal('valid: sha256 signature, sha256 bank, 3 PCR(s)');
  });

  it('exits 1 for a wrong nonce, naming the failed check', async () => {
    const result = await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--nonce', 'ai5M5SjYjnkyv4P7itH1',
      '--quote', checkquote('quote_wire_format.txt'));
    expect(result).to.deep.equal({ code: 1, stdout: 'INVALID (nonce): quote: extraData does not match the nonce\n', stderr: '' });
  });

  it('exits 1 with JSON for the wrong hash algorithm', async () => {
    const result = await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--nonce', 'Ai5M5SjYjnkyv4P7itH1',
      '--quote', checkquote('quote_wire_format.txt'), '--hash-alg', 'sha1', '--json');
    expect(result.code).to.equal(1);
    expect(JSON.parse(result.stdout)).to.include({ valid: false, failedCheck: 'hash-alg', hashAlg: 'sha1' });
  });

  it('exits 1 for a quote signed by a 1024-bit RSA AK, given as TPM2B_PUBLIC or as PEM, naming weak-key', async () => {
    const weak = new FakeAgent({ akRsaBits: 1024 });
    const nonce = Buffer.from('weakAkNonce000000001');
    const quote = path.join(dir, 'weak-quote.txt');
    writeFileSync(quote, weak.quote(nonce, new Map([[16, new Uint8Array(32)]])));
    const tpm2b = path.join(dir, 'weak-ak.pub');
    writeFileSync(tpm2b, Buffer.from(weak.akTpm, 'base64'));
    const pem = path.join(dir, 'weak-ak.pem');
    writeFileSync(pem, signingKeyFrom(weak.akPublic).export({ type: 'spki', format: 'pem' }));
    for (const ak of [tpm2b, pem]) {
      const result = await run('tpm', 'verify-quote', '--ak', ak, '--nonce', nonce.toString(), '--quote', quote);
      expect(result.code, result.stdout + result.stderr).to.equal(1);
      expect(result.stdout).to.equal('INVALID (weak-key): quote: the AK is a 1024-bit RSA key (at least 2048 bits are required)\n');
    }
  });

  it('exits 2 for a malformed PCR file, a malformed quote string and missing arguments', async () => {
    const badPcrs = path.join(dir, 'pcrs.bin');
    writeFileSync(badPcrs, readFileSync(checkquote('quote.pcrs.tpm2tools.bin')).subarray(0, 100));
    const malformed = await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--nonce', 'x',
      '--message', checkquote('quote.tpms_attest.bin'), '--signature', checkquote('quote.tpmt_signature.bin'), '--pcrs', badPcrs);
    expect(malformed.code).to.equal(2);
    expect(malformed.stderr).to.match(/^ironlime: PCR blob\.TPML_PCR_SELECTION: at offset 4: need 128 byte\(s\), 96 left/);

    const quote = path.join(dir, 'quote.txt');
    writeFileSync(quote, 'not a quote');
    expect((await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--nonce', 'x', '--quote', quote)).code).to.equal(2);

    const missing = await run('tpm', 'verify-quote', '--ak', checkquote('aik_pub.pem'), '--quote', checkquote('quote_wire_format.txt'));
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.contain('give exactly one of --nonce TEXT or --nonce-hex HEX');
  });
});

describe('ironlime tpm make-credential', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-tpm-cli-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a credential file that the EK private key activates for the AK name', async () => {
    const ek = newRsaKeyPairSync();
    const ekPublic = marshalTpm2bPublic(tpmtPublicFromKey(ek.publicKey, EK_TEMPLATE_RSA_2048));
    const akName = tpmObjectName(parseTpm2bPublic(keylimeLegacy('ak.pub')));
    const files = { ek: path.join(dir, 'ek.pub'), secret: path.join(dir, 'secret'), out: path.join(dir, 'cred.out') };
    writeFileSync(files.ek, ekPublic);
    writeFileSync(files.secret, '12345678\n');
    const result = await run('tpm', 'make-credential', '--ek', files.ek, '--ak-name', toHex(akName), '--secret', files.secret, '--out', files.out);
    expect(result).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    const blob = new Uint8Array(readFileSync(files.out));
    expect(toHex(blob.subarray(0, 8))).to.equal('badcc0de00000001');
    expect(Buffer.from(activateCredential({ ekPrivateKey: ek.privateKey, ekPublic, akName, blob })).toString()).to.equal('12345678\n');
  });

  it('exits 2 for an AK name that is not a TPM name', async () => {
    const result = await run('tpm', 'make-credential', '--ek', legacy('ek.pub'), '--ak-name', '000b1234', '--secret', legacy('rand.out'),
      '--out', path.join(dir, 'x'));
    expect(result.code).to.equal(2);
    expect(result.stderr).to.contain('--ak-name must be a TPM name');
  });
});

describe('ironlime tpm verify-ek-cert', () => {
  it('exits 0 for the ST ECC EK certificate against the packaged store, 1 for the Infineon one', async () => {
    const st = await run('tpm', 'verify-ek-cert', '--cert', vectorPath('keylime', 'ek_certs', 'stm_ecc_ek.der'));
    expect(st).to.deep.equal({ code: 0, stdout: 'valid: anchored by STM_ECC_01I.pem\n', stderr: '' });
    const ifx = await run('tpm', 'verify-ek-cert', '--cert', vectorPath('keylime', 'ek_certs', 'infineon_slb9670_rsa_ek.der'), '--json');
    expect(ifx.code).to.equal(1);
    expect(JSON.parse(ifx.stdout)).to.include({ valid: false });
  });

  it('exits 2, not 1, for an --intermediate file that holds no readable certificate (malformed input)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-ek-intermediate-'));
    try {
      const unreadable = path.join(dir, 'unreadable.pem');
      writeFileSync(unreadable, `-----BEGIN CERTIFICATE-----\n${Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]).toString('base64')}\n-----END CERTIFICATE-----\n`);
      const result = await run('tpm', 'verify-ek-cert', '--cert', vectorPath('keylime', 'ek_certs', 'stm_ecc_ek.der'), '--intermediate', unreadable);
      expect(result.code, result.stdout).to.equal(2);
      expect(result.stderr).to.contain('are not a DER X.509 certificate');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 for a store folder that does not exist', async () => {
    const result = await run('tpm', 'verify-ek-cert', '--cert', vectorPath('keylime', 'ek_certs', 'stm_ecc_ek.der'), '--store', '/nonexistent-store');
    expect(result.code).to.equal(2);
    expect(result.stderr).to.contain('cannot read the CA store /nonexistent-store');
  });
});
