import { constants, createHash, privateEncrypt, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import forge from 'node-forge';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import { ImaKeyring, ImaKeyrings, imaKeyIdV2, readPublicKeyBlob } from '../../lib/ima/ima-keyring.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { emptyRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { rustKeylimeLog } from './ima-vectors.js';
import { cpuTimed } from '../helpers/cpu-time.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';
import { generateRsaKeyPair } from '../../lib/pki/x509-builder.js';

/** A list line with its sha1 template hash filled in (`HASH` in `line`). */
function withTemplateHash(line: string): string {
  const entry = parseImaAsciiLine(line.replace('HASH', '00'.repeat(20)), 1);
  return line.replace('HASH', createHash('sha1').update(entry.templateData).digest('hex'));
}

/** An `ima-buf` line loading `keyDer` onto the keyring `ring`. */
function keyLine(ring: string, keyDer: Buffer): string {
  return withTemplateHash(`10 HASH ima-buf sha256:${createHash('sha256').update(keyDer).digest('hex')} ${ring} ${keyDer.toString('hex')}`);
}

/** An `ima-sig` line for `path`, signed (signature v2, RSA PKCS#1 v1.5, SHA-256) by `privateKey` as key id `keyId`. */
function signedLine(path: string, privateKey: KeyObject, keyId: number): string {
  const digest = createHash('sha256').update(`contents of ${path}`).digest();
  const digestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex');
  const signature = privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([digestInfo, digest]));
  const header = Buffer.alloc(9);
  header.writeUInt8(3, 0);
  header.writeUInt8(2, 1);
  header.writeUInt8(4, 2);
  header.writeUInt32BE(keyId, 3);
  header.writeUInt16BE(signature.length, 7);
  return withTemplateHash(`10 HASH ima-sig sha256:${digest.toString('hex')} ${path} ${Buffer.concat([header, signature]).toString('hex')}`);
}

/** PCR 10 (sha1 bank) after `lines`, from `start`. */
function pcr10(lines: readonly string[], start: Uint8Array = Buffer.alloc(20)): Buffer {
  let pcr = Buffer.from(start);
  for (const line of lines) {
    const templateHash = createHash('sha1').update(parseImaAsciiLine(line, 1).templateData).digest();
    pcr = createHash('sha1').update(pcr).update(templateHash).digest();
  }
  return pcr;
}

function rsaKey() {
  return newRsaKeyPairSync();
}

/** A runtime policy listing the rust-keylime log's boot_aggregate and the key `keyDer` on the keyring `ring`. */
function policyVouchingFor(ring: string, keyDer: Buffer): CompiledRuntimePolicy {
  const policy = emptyRuntimePolicy();
  policy.digests['boot_aggregate'] = ['00'.repeat(20)];
  policy.keyrings[ring] = [createHash('sha256').update(keyDer).digest('hex')];
  return compileRuntimePolicy(policy);
}

describe('IMA keys learnt from ima-buf entries', () => {
  const [bootAggregate] = rustKeylimeLog().split('\n') as [string];
  const tenantKey = rsaKey();
  const tenant = new ImaKeyring();
  tenant.add(tenantKey.publicKey);
  const nodeKey = rsaKey();
  const nodeKeyDer = nodeKey.publicKey.export({ type: 'spki', format: 'der' });
  const nodeKeyId = readPublicKeyBlob(nodeKeyDer)?.keyId ?? -1;

  it('without a runtime policy a key the node loads is not learnt: nothing vouches for it (Keylime checks it against its empty policy)', () => {
    // A root user adds its own key to a keyring IMA measures (KEY_CHECK), then signs what it runs with it.
    const lines = [bootAggregate, keyLine('_ima', nodeKeyDer), signedLine('/usr/bin/evil', nodeKey.privateKey, nodeKeyId)];
    const round = verifyImaList({ listText: `${lines.join('\n')}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: pcr10(lines) }, keyrings: tenant });
    expect(round.valid).to.equal(false);
    expect(round.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[3, 'ima.validator.ima-sig.invalid_signature']]);
  });

  describe('only a line the quote binds carries its key into the next round', () => {
    const load = keyLine('.ima', nodeKeyDer);
    const evil = signedLine('/usr/bin/evil', nodeKey.privateKey, nodeKeyId);
    const policy = policyVouchingFor('.ima', nodeKeyDer);

    it('a key loaded after the quote\'s match point is not learnt for the next round', () => {
      const bound = pcr10([bootAggregate]);
      const round1 = verifyImaList({ listText: `${bootAggregate}\n${load}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy });
      expect(round1.valid).to.equal(true);
      expect(round1.nextState.nextEntry).to.equal(1);
      expect(round1.nextState.learnedKeyrings).to.deep.equal({});

      // Round 2: the node sends something else as entry 1, signed by the key it claimed to load.
      const round2 = verifyImaList({ listText: `${evil}\n`, state: round1.nextState, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy });
      expect(round2.valid).to.equal(false);
      // Its signature does not verify, so the policy's digests decide, which do not list it.
      expect(round2.failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    });

    it('a key loaded by a quote-bound line is learnt and verifies later rounds\' entries (control)', () => {
      const bound = pcr10([bootAggregate, load]);
      const round1 = verifyImaList({ listText: `${bootAggregate}\n${load}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy });
      expect(round1.valid).to.equal(true);
      expect(round1.nextState.learnedKeyrings['.ima']?.keyids).to.deep.equal([nodeKeyId]);
      const round2 = verifyImaList({ listText: `${evil}\n`, state: round1.nextState, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy });
      expect(round2.valid, JSON.stringify(round2.failures)).to.equal(true);
    });

    it('a stored key the current policy would not let a line load is not trusted (a state stored by an earlier version, or before the policy changed)', () => {
      const bound = pcr10([bootAggregate, load]);
      // The state an earlier version stored when it learnt keys with no runtime policy: the same shape.
      const stored = verifyImaList({ listText: `${bootAggregate}\n${load}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy }).nextState;
      expect(stored.learnedKeyrings['.ima']?.keyids).to.deep.equal([nodeKeyId]);
      const next = (withPolicy: CompiledRuntimePolicy | undefined) =>
        verifyImaList({ listText: `${evil}\n`, state: stored, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy: withPolicy });
      const none = next(undefined);
      expect(none.failures.map((f) => f.eventId)).to.deep.equal(['ima.validator.ima-sig.invalid_signature']);
      const unlisted = emptyRuntimePolicy();
      unlisted.digests['boot_aggregate'] = ['00'.repeat(20)];
      expect(next(compileRuntimePolicy(unlisted)).failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
      const ignoring = emptyRuntimePolicy();
      ignoring.keyrings['.ima'] = [createHash('sha256').update(nodeKeyDer).digest('hex')];
      ignoring.ima.ignored_keyrings = ['.ima'];
      expect(next(compileRuntimePolicy(ignoring)).failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
      // Nor is it carried on: a later round under the vouching policy does not find it either.
      const carried = verifyImaList({ listText: '', state: stored, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant }).nextState;
      expect(carried.learnedKeyrings).to.deep.equal({});
      expect(next(policy).valid).to.equal(true);
    });

    it('a stored key whose digest the current policy no longer lists is not trusted (the key was revoked), one the policy still lists is', () => {
      const bound = pcr10([bootAggregate, load]);
      const stored = verifyImaList({ listText: `${bootAggregate}\n${load}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy }).nextState;
      const revoked = emptyRuntimePolicy();
      revoked.digests['boot_aggregate'] = ['00'.repeat(20)];
      revoked.keyrings['.ima'] = [createHash('sha256').update(rsaKey().publicKey.export({ type: 'spki', format: 'der' })).digest('hex')];
      const round = verifyImaList({ listText: `${evil}\n`, state: stored, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy: compileRuntimePolicy(revoked) });
      expect(round.failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
      expect(round.nextState.learnedKeyrings).to.deep.equal({});
      const kept = verifyImaList({ listText: `${evil}\n`, state: stored, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy });
      expect(kept.valid, JSON.stringify(kept.failures)).to.equal(true);
      expect(kept.nextState.learnedKeyrings['.ima']?.keyids).to.deep.equal([nodeKeyId]);
      expect(kept.nextState.learnedKeyrings['.ima']?.digests).to.deep.equal([createHash('sha256').update(nodeKeyDer).digest('hex')]);
      // A key stored before digests were kept is held to its keyring's name: the node passes after an upgrade.
      const legacy = { ...stored, learnedKeyrings: { '.ima': { pubkeys: stored.learnedKeyrings['.ima']?.pubkeys ?? [], keyids: [nodeKeyId] } } };
      const upgraded = verifyImaList({ listText: `${evil}\n`, state: legacy, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy });
      expect(upgraded.valid, JSON.stringify(upgraded.failures)).to.equal(true);
      expect(() => verifyImaList({ listText: '', state: { ...stored, learnedKeyrings: { '.ima': { ...legacy.learnedKeyrings['.ima'], digests: [1] as never } } } })).to.throw(/digests must be a list/);
    });

    it('a key learnt from a keyring the policy excludes (Keylime learns it: the exclude accepts the line) still verifies the next round', () => {
      const excluding = emptyRuntimePolicy();
      excluding.digests['boot_aggregate'] = ['00'.repeat(20)];
      excluding.excludes = ['^\\.ima$'];
      const compiled = compileRuntimePolicy(excluding);
      const bound = pcr10([bootAggregate, load]);
      const round1 = verifyImaList({ listText: `${bootAggregate}\n${load}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy: compiled });
      expect(round1.nextState.learnedKeyrings['.ima']?.keyids).to.deep.equal([nodeKeyId]);
      const round2 = verifyImaList({ listText: `${evil}\n`, state: round1.nextState, quotedPcr10: { bank: 'sha1', value: pcr10([evil], bound) }, keyrings: tenant, policy: compiled });
      expect(round2.valid, JSON.stringify(round2.failures)).to.equal(true);
    });

    it('within a round, a key loaded after the match point still verifies the lines after it', () => {
      const bound = pcr10([bootAggregate]);
      const round = verifyImaList({ listText: `${bootAggregate}\n${load}\n${evil}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: bound }, keyrings: tenant, policy });
      expect(round.valid, JSON.stringify(round.failures)).to.equal(true);
      expect(round.nextState.learnedKeyrings).to.deep.equal({});
    });
  });

  it('a look-up does not walk the keyrings the list named: a learnt key is found by id (20,000 keys, 20,000 look-ups)', () => {
    const keyrings = new ImaKeyrings();
    keyrings.ring('tenant_keyring').add(tenantKey.publicKey);
    for (let i = 0; i < 20_000; i++) {
      keyrings.learn(nodeKey.publicKey, i);
    }
    let found = 0;
    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { ms } = cpuTimed(() => {
      for (let i = 0; i < 20_000; i++) {
        found += keyrings.find(i) === undefined ? 0 : 1;
        found += keyrings.find(0x8000_0000 + i) === undefined ? 0 : 1;
      }
    });
    expect(found).to.equal(20_000);
    // Walking the keyrings took about 20 s here; looking up by id takes about a tenth of a second in all.
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(1000);
  });

  it('a learnt certificate whose key id is a tenant key\'s, loaded onto "tenant_keyring", does not replace the tenant key', () => {
    const tenantKeyId = imaKeyIdV2(tenantKey.publicKey);
    // A certificate for the node's key whose Subject Key Identifier ends with the tenant key's id.
    const keys = generateRsaKeyPair();
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.publicKey;
    cert.serialNumber = '01';
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + 86_400_000);
    cert.setSubject([{ name: 'commonName', value: 'node' }]);
    cert.setIssuer([{ name: 'commonName', value: 'node' }]);
    const ski = forge.util.hexToBytes(`${'00'.repeat(16)}${tenantKeyId.toString(16).padStart(8, '0')}`);
    cert.setExtensions([{ id: '2.5.29.14', value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, ski) }]);
    cert.sign(keys.privateKey, forge.md.sha256.create());
    const certDer = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
    expect(readPublicKeyBlob(certDer)?.keyId).to.equal(tenantKeyId);

    const lines = [bootAggregate, keyLine('tenant_keyring', certDer), signedLine('/usr/bin/tenant-signed', tenantKey.privateKey, tenantKeyId)];
    const policy = policyVouchingFor('tenant_keyring', certDer);
    const round = verifyImaList({ listText: `${lines.join('\n')}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: pcr10(lines) }, keyrings: tenant, policy });
    expect(round.valid, JSON.stringify(round.failures)).to.equal(true);
    // The learnt key is carried as learnt, and the tenant's key is not carried with it.
    const carried = round.nextState.learnedKeyrings.tenant_keyring;
    expect(carried?.pubkeys).to.have.length(1);
    expect(carried?.pubkeys[0]).to.not.equal(tenantKey.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));
  });
});
