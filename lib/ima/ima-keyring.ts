import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { certificateSubjectKeyId } from './internal/der-reader.js';
import { isSupportedCurve } from './internal/ecdsa-prehashed.js';
import { pythonJsonDumps } from './python-json.js';
import { RuntimePolicyError } from './internal/runtime-policy-error.js';
import { parsePolicyJson } from './internal/policy-json.js';

/**
 * IMA keyrings: public keys indexed by their IMA key id (keyidv2), as Keylime's
 * `file_signatures.ImaKeyring` / `ImaKeyrings` model the kernel's `.ima` and friends. Keys come from
 * the policy's `verification-keys`, from the tenant, and from `ima-buf` entries that measure a key
 * being loaded onto a keyring (learnt during replay).
 *
 * JSON form (Keylime's, persisted as `learned_ima_keyrings`): `{"pubkeys": [b64 DER SPKI…],
 * "keyids": [u32…]}` per keyring.
 */

/** A keyring's JSON form. */
export interface ImaKeyringJson {
  pubkeys: string[];
  keyids: number[];
  /**
   * ironlime's, in learnt keyrings only: the digest (hex) the `ima-buf` line that loaded each key
   * logged, '' when not known (internal/learnt-keyrings.ts). Keylime's readers ignore it.
   */
  digests?: string[];
}

/**
 * Keys a keyring given as text (a policy's `verification-keys`, `ima_sign_verification_keys`) may
 * hold. Each key costs node:crypto about 0.2 ms to load (an EC point is checked on its curve), and a
 * policy's keyring is loaded twice (checked, then compiled): 20,000 keys in a 2.5 MiB runtime policy
 * held a `POST /verify/evidence` thread 8 s of CPU, a real policy of that size about 0.5 s. Real
 * keyrings hold the few keys a distribution and its vendors sign with (Keylime's vector: two).
 */
export const MAX_IMA_KEYRING_KEYS = 256;

/** A key found in a blob that is a key, but of a type IMA signatures cannot use. */
export class UnsupportedImaKey extends Error {}

/**
 * keyidv2 of a key: the last 4 bytes (big-endian) of SHA-1 over the PKCS#1 `RSAPublicKey` DER, or
 * over the uncompressed EC point (Keylime `ImaKeyring._get_keyidv2`, kernel `x509_get_sig_params`
 * via the SKI evmctl writes).
 */
export function imaKeyIdV2(key: KeyObject): number {
  let material: Buffer;
  if (key.asymmetricKeyType === 'rsa') {
    material = key.export({ format: 'der', type: 'pkcs1' });
  } else {
    const jwk = key.export({ format: 'jwk' });
    material = Buffer.concat([
      Buffer.from([0x04]),
      Buffer.from(jwk.x ?? '', 'base64url'),
      Buffer.from(jwk.y ?? '', 'base64url'),
    ]);
  }
  return createHash('sha1').update(material).digest().readUInt32BE(16);
}

function checkSupported(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType === 'rsa') {
    return key;
  }
  if (key.asymmetricKeyType === 'ec' && isSupportedCurve(attempt(() => key.export({ format: 'jwk' }).crv) ?? '')) {
    return key;
  }
  throw new UnsupportedImaKey(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

/**
 * The certificate's public key. OpenSSL parses a certificate whose SubjectPublicKeyInfo algorithm is
 * corrupt, and only fails when the key is asked for (issue 11 item 5): that is an unusable key, not a
 * crash.
 */
function certificatePublicKey(certificate: X509Certificate): KeyObject {
  try {
    return certificate.publicKey;
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new UnsupportedImaKey(`certificate public key cannot be read${typeof code === 'string' ? ` (${code})` : ''}`, { cause });
  }
}

function attempt<T>(load: () => T): T | undefined {
  try {
    return load();
  } catch {
    return undefined;
  }
}

/**
 * Reads a public key from a blob as Keylime's `get_pubkey` does: DER or PEM public key, DER or PEM
 * X.509 certificate (its key id then comes from its Subject Key Identifier when it has one), or the
 * public half of a DER or PEM private key.
 * Returns `undefined` when the blob is not a key at all.
 *
 * @throws UnsupportedImaKey when the blob is a key, but neither RSA nor EC on a curve we verify, or a
 *   certificate whose public key cannot be read.
 */
export function readPublicKeyBlob(blob: Uint8Array): { key: KeyObject; keyId: number } | undefined {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const isPem = bytes.subarray(0, 11).toString('latin1') === '-----BEGIN ';
  const certificate = attempt(() => new X509Certificate(bytes));
  if (certificate !== undefined) {
    const key = checkSupported(certificatePublicKey(certificate));
    const ski = attempt(() => certificateSubjectKeyId(certificate.raw));
    const keyId = ski !== undefined && ski.length >= 4 ? Buffer.from(ski).readUInt32BE(ski.length - 4) : imaKeyIdV2(key);
    return { key, keyId };
  }
  const key = isPem
    ? attempt(() => createPublicKey(bytes.toString('latin1')))
    : (attempt(() => createPublicKey({ key: bytes, format: 'der', type: 'spki' })) ??
      attempt(() => createPublicKey(createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' }))) ??
      attempt(() => createPublicKey(createPrivateKey({ key: bytes, format: 'der', type: 'sec1' }))) ??
      attempt(() => createPublicKey(createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' }))));
  if (key === undefined) {
    return undefined;
  }
  const supported = checkSupported(key);
  return { key: supported, keyId: imaKeyIdV2(supported) };
}

/** One keyring: keys by key id, in insertion order. */
export class ImaKeyring {
  private readonly keys = new Map<number, KeyObject>();

  add(key: KeyObject, keyId = imaKeyIdV2(key)): void {
    this.keys.set(keyId >>> 0, key);
  }

  get(keyId: number): KeyObject | undefined {
    return this.keys.get(keyId);
  }

  get size(): number {
    return this.keys.size;
  }

  entries(): IterableIterator<[number, KeyObject]> {
    return this.keys.entries();
  }

  toJSON(): ImaKeyringJson {
    const pubkeys = [...this.keys.values()].map((key) => key.export({ format: 'der', type: 'spki' }).toString('base64'));
    return { pubkeys, keyids: [...this.keys.keys()] };
  }

  /** The JSON text exactly as Keylime writes it (Python `json.dumps` spacing). */
  toString(): string {
    return pythonJsonDumps(this.toJSON());
  }

  /**
   * Builds a keyring from its JSON form (object, or JSON text, possibly encoded twice as Keylime's
   * database column holds it). `field` names the source in errors. More than `maxKeys` keys are
   * refused before any is loaded.
   *
   * @throws RuntimePolicyError when the JSON is not a keyring, holds too many keys or a key cannot be loaded.
   */
  static fromJson(value: unknown, field: string, maxKeys = MAX_IMA_KEYRING_KEYS): ImaKeyring {
    let json = value;
    for (let depth = 0; depth < 2 && typeof json === 'string'; depth++) {
      json = parsePolicyJson(json, field);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new RuntimePolicyError(field, 'is not a valid IMA keyring: expected {"pubkeys": [...], "keyids": [...]}');
    }
    const { pubkeys, keyids } = json as Record<string, unknown>;
    if (!Array.isArray(pubkeys) || !pubkeys.every((k) => typeof k === 'string')) {
      throw new RuntimePolicyError(`${field}.pubkeys`, 'must be a list of base64 DER public keys');
    }
    if (!Array.isArray(keyids) || !keyids.every((k) => Number.isInteger(k) && k >= 0 && k <= 0xffffffff)) {
      throw new RuntimePolicyError(`${field}.keyids`, 'must be a list of 32-bit key ids');
    }
    if (pubkeys.length > maxKeys) {
      throw new RuntimePolicyError(`${field}.pubkeys`, `holds ${pubkeys.length} keys, more than ${maxKeys}`);
    }
    if (keyids.length > pubkeys.length) {
      throw new RuntimePolicyError(`${field}.keyids`, `has ${keyids.length} ids for ${pubkeys.length} keys`);
    }
    const ring = new ImaKeyring();
    pubkeys.forEach((encoded, index) => {
      const where = `${field}.pubkeys[${index}]`;
      const der = Buffer.from(encoded, 'base64');
      const key = attempt(() => createPublicKey({ key: der, format: 'der', type: 'spki' }));
      if (key === undefined) {
        throw new RuntimePolicyError(where, 'is not a base64 DER SubjectPublicKeyInfo');
      }
      try {
        ring.add(checkSupported(key), keyids[index] as number | undefined);
      } catch (error) {
        throw new RuntimePolicyError(where, (error as Error).message);
      }
    });
    return ring;
  }
}

/**
 * Named keyrings; signature checks look a key id up in all of them. Keys the verifier trusts (the
 * policy's verification keys, the tenant's) and keys learnt from the node's `ima-buf` entries are
 * kept apart, and a trusted key is found first: a learnt key, whose id the node chooses (a
 * certificate's Subject Key Identifier), on a keyring the node names (even `tenant_keyring`), can
 * neither replace a trusted key nor be carried forward as one.
 */
export class ImaKeyrings {
  private readonly trusted = new Map<string, ImaKeyring>();
  /**
   * Every learnt key by id, the latest learnt for an id: the node names the keyrings, one per line
   * if it likes, so a look-up must not walk them (20,000 lines would be 20,000 × 20,000 steps).
   */
  private readonly learntById = new Map<number, KeyObject>();

  /** The trusted keyring called `name`. */
  ring(name: string): ImaKeyring {
    return ringOf(this.trusted, name);
  }

  /** Adds every key of `ring` into the trusted keyring called `name`. */
  merge(name: string, ring: ImaKeyring): void {
    const target = this.ring(name);
    for (const [keyId, key] of ring.entries()) {
      target.add(key, keyId);
    }
  }

  /**
   * Learns `key`, loaded onto a keyring the node named: a look-up finds it by id whatever the
   * keyring (the stored form, by keyring, is internal/learnt-keyrings.ts's).
   */
  learn(key: KeyObject, keyId: number): void {
    this.learntById.set(keyId >>> 0, key);
  }

  find(keyId: number): KeyObject | undefined {
    for (const ring of this.trusted.values()) {
      const key = ring.get(keyId);
      if (key !== undefined) {
        return key;
      }
    }
    return this.learntById.get(keyId >>> 0);
  }
}

function ringOf(rings: Map<string, ImaKeyring>, name: string): ImaKeyring {
  let ring = rings.get(name);
  if (ring === undefined) {
    ring = new ImaKeyring();
    rings.set(name, ring);
  }
  return ring;
}
