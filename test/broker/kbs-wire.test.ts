import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { RESOURCE_PART, reportDataHashNamed, reportDataOf, type ReportDataHash, type RuntimeData } from '../../lib/broker/kbs-wire.js';

/** 32 zero bytes, standard base64: a Challenge nonce. */
const NONCE = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
/** The P-256 public key of RFC 7515 appendix A.3, as a tee-pubkey (members in the order a client may send them). */
const TEE_PUBKEY = {
  kty: 'EC',
  crv: 'P-256',
  alg: 'ECDH-ES+A256KW',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
};
const RUNTIME_DATA: RuntimeData = { nonce: NONCE, 'tee-pubkey': TEE_PUBKEY };

/**
 * The RFC 8785 text guest-components hashes for this runtime data and no additional evidence
 * (`get_composite_evidence`: `{"tee-pubkey", "nonce", "additional-evidence"}`, keys sorted), and its
 * digests, computed outside this code base (Python `json.dumps(sort_keys=True, separators=(',', ':'))`
 * and `hashlib`).
 */
const BOUND_TEXT =
  '{"additional-evidence":"","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC",' +
  '"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}';
const DIGESTS: Record<ReportDataHash, string> = {
  sha256: '372ef8cab5c4d00ada11399e6e22a1c4209236dcecf9119d87512e7c9b6d409c',
  sha384: 'd4bd1841ef158d7c3904848b81d834cafb2fb888d896151632a2aa5e8c258da20f8ba11735fc30d095f10ed26e055e09',
  sha512: '1c06da673f3520e77d472981cee1383b0b829831f9330dcb9b3fc1babb08555a5942c838cb426df92d2c6b6247b17fa950b7de09738e0bf94201456b3fc1e9e6',
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('KBS wire: the runtime-data binding and resource path parts', function () {
  it('the fixed vector: the JCS text and its digests are what the report data is made of', function () {
    for (const [hash, digest] of Object.entries(DIGESTS)) {
      expect(createHash(hash).update(BOUND_TEXT, 'utf8').digest('hex'), `${hash} of the text`).to.equal(digest);
      expect(hex(reportDataOf({ runtimeData: RUNTIME_DATA, additionalEvidence: '', hash: hash as ReportDataHash, tee: 'snp' })), `${hash}, whole`).to.equal(digest);
    }
  });

  it('for tee tpm the digest is cut to its first 32 bytes (SHA-256 kept whole)', function () {
    for (const [hash, digest] of Object.entries(DIGESTS)) {
      expect(hex(reportDataOf({ runtimeData: RUNTIME_DATA, additionalEvidence: '', hash: hash as ReportDataHash, tee: 'tpm' })), hash).to.equal(digest.slice(0, 64));
    }
  });

  it('binds the additional evidence: "x" gives the digest of the text with "x" (computed outside, as DIGESTS)', function () {
    const withX = reportDataOf({ runtimeData: RUNTIME_DATA, additionalEvidence: 'x', hash: 'sha256', tee: 'tpm' });
    expect(hex(withX)).to.equal('5942d088a4ac62dbb1f688769fb837b37092ecf02962eb92cb632b9128805327');
  });

  it('names the three hashes in any letter case, and nothing else', function () {
    expect(['sha256', 'SHA384', 'Sha512'].map(reportDataHashNamed)).to.deep.equal(['sha256', 'sha384', 'sha512']);
    for (const other of ['md5', 'sha1', 'sha3-256', '', 'sha384 ', 'sha-384']) {
      expect(reportDataHashNamed(other), other).to.equal(undefined);
    }
  });

  it('a resource path part is 1-128 of [A-Za-z0-9._-], never . or ..', function () {
    for (const part of ['a', 'disk-key', 'u.12_a-b', '...', '.a', 'x'.repeat(128)]) {
      expect(RESOURCE_PART.test(part), part).to.equal(true);
    }
    for (const part of ['.', '..', '', 'a b', 'a/b', 'x'.repeat(129), '%2e']) {
      expect(RESOURCE_PART.test(part), part).to.equal(false);
    }
  });
});
