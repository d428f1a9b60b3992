import { createPublicKey, generateKeyPairSync, generatePrimeSync, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/**
 * CA certificates an agent could send with its EK certificate to make the registrar's chain walk
 * costly: keys of hostile sizes or curves, and same-named CAs that sign each other; and a legitimate
 * chain of same-named CAs (a key rollover) that a walk bounding those must still follow.
 */

/**
 * DER of a CA certificate whose RSA key has a `bits`-bit modulus: any odd number of that size parses
 * as an RSA public key, so no prime pair has to be generated (an 8192-bit one takes seconds).
 */
export function caWithRsaModulusBits(bits: number): Uint8Array {
  const modulus = randomBytes(bits / 8);
  modulus[0] = (modulus[0] ?? 0) | 0x80;
  modulus[modulus.length - 1] = (modulus[modulus.length - 1] ?? 0) | 1;
  const signer = newRsaKeyPairSync();
  const publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger(modulus.toString('hex'), 16), new forge.jsbn.BigInteger('65537', 10));
  return caCertificate('decoy CA', publicKey, 'decoy CA', signer.privateKey, '02');
}

/** DER SubjectPublicKeyInfo of an RSA key with a random `bits`-bit modulus and a random `exponentBits`-bit odd exponent. */
export function rsaPublicKeyInfo(bits: number, exponentBits: number): Uint8Array {
  const topBitSet = (size: number): Buffer => {
    const value = randomBytes(Math.ceil(size / 8));
    const spare = value.length * 8 - size;
    value[0] = ((value[0] ?? 0) & (0xff >> spare)) | (0x80 >> spare);
    value[value.length - 1] = (value[value.length - 1] ?? 0) | 1;
    return value;
  };
  const jwk = { kty: 'RSA', n: topBitSet(bits).toString('base64url'), e: topBitSet(exponentBits).toString('base64url') };
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/** DER SubjectPublicKeyInfo of a fresh EC key on OpenSSL's curve `curve` (e.g. 'secp384r1', 'sect571k1'). */
export function ecPublicKeyInfo(curve: string): Uint8Array {
  return generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ type: 'spki', format: 'der' });
}

/**
 * DER SubjectPublicKeyInfo of an EC key whose curve is spelled out (SEC 1 §C.2 ECParameters, a
 * prime field of `bits` bits) instead of named: OpenSSL reads it and names no curve. The curve is
 * made to pass through one random point, which serves as both generator and public key; its order
 * is never computed (OpenSSL does not check it when it reads the key).
 */
export function explicitCurvePublicKeyInfo(bits: number): Uint8Array {
  const p = generatePrimeSync(bits, { bigint: true });
  const size = Math.ceil(bits / 8);
  const below = (m: bigint): bigint => BigInt(`0x${randomBytes(size + 8).toString('hex')}`) % m;
  const mod = (v: bigint): bigint => ((v % p) + p) % p;
  const [a, x, y] = [below(p), below(p), below(p)];
  const b = mod(y * y - x * x * x - a * x);
  const fixed = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(size * 2, '0'), 'hex');
  const point = Buffer.concat([Buffer.from([0x04]), fixed(x), fixed(y)]);
  const { asn1 } = forge;
  const der = (node: forge.asn1.Asn1): string => asn1.toDer(node).getBytes();
  const integer = (v: bigint): forge.asn1.Asn1 => asn1.fromDer(forge.util.createBuffer(integerDer(v)));
  const octets = (bytes: Buffer): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString('binary'));
  const oid = (dotted: string): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
  const sequence = (...items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
  const parameters = sequence(
    integer(1n),
    sequence(oid('1.2.840.10045.1.1'), integer(p)), // prime-field
    sequence(octets(fixed(a)), octets(fixed(b))),
    octets(point),
    integer(p - 2n),
    integer(1n),
  );
  const spki = sequence(
    sequence(oid('1.2.840.10045.2.1'), parameters), // id-ecPublicKey
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${point.toString('binary')}`),
  );
  return Buffer.from(der(spki), 'binary');
}

/**
 * DER of a CA certificate named "decoy CA" that carries `publicKeyInfo` (any key type): made with an
 * RSA key, whose SubjectPublicKeyInfo is then swapped (its own signature is never checked here).
 */
export function caWithKey(publicKeyInfo: Uint8Array): Uint8Array {
  const cert = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(caWithRsaModulusBits(2048)).toString('binary')));
  const tbs = (cert.value as forge.asn1.Asn1[])[0] as forge.asn1.Asn1;
  // TBSCertificate: [0] version, serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo (RFC 5280 §4.1).
  (tbs.value as forge.asn1.Asn1[])[6] = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(publicKeyInfo).toString('binary')));
  return Buffer.from(forge.asn1.toDer(cert).getBytes(), 'binary');
}

/**
 * `count` CA certificates all named "CN=X", and a certificate for `leafKey` issued by "CN=X", laid
 * out so that a walk which may revisit a CA checks the most signatures: the first `count - 2` are
 * self-signed and sign nothing else, the last two sign each other, and the last one signed the leaf.
 */
export function sameNameCaRing(count: number, leafKey: KeyObject): { intermediates: Uint8Array[]; leaf: Uint8Array } {
  const keys = Array.from({ length: count }, () => newRsaKeyPairSync());
  const signerOf = (index: number): number => (index === count - 1 ? count - 2 : index === count - 2 ? count - 1 : index);
  const intermediates = keys.map((pair, index) =>
    caCertificate('X', forgeKey(pair.publicKey), 'X', (keys[signerOf(index)] ?? pair).privateKey, `1${index}`));
  const last = keys[count - 1];
  if (last === undefined) throw new Error('a ring needs at least one CA');
  return { intermediates, leaf: certificate('X', forgeKey(leafKey), 'X', last.privateKey, '64', false) };
}

/**
 * A CA key rollover without key identifiers (RFC 4210 §4.4 link certificate): root "R" signed the CA
 * "X" with its new key, the new key signed a link certificate "X" for the old key, and the old key
 * signed the leaf. Sent as `[newCa, link]`, the first "X" tried for the leaf is the wrong one.
 */
export function rolloverWithoutKeyIds(leafKey: KeyObject): { root: Uint8Array; newCa: Uint8Array; link: Uint8Array; leaf: Uint8Array } {
  const [rootKey, newKey, oldKey] = [0, 1, 2].map(() => newRsaKeyPairSync());
  if (rootKey === undefined || newKey === undefined || oldKey === undefined) throw new Error('three keys were made');
  return {
    root: caCertificate('R', forgeKey(rootKey.publicKey), 'R', rootKey.privateKey, '20'),
    newCa: caCertificate('X', forgeKey(newKey.publicKey), 'R', rootKey.privateKey, '21'),
    link: caCertificate('X', forgeKey(oldKey.publicKey), 'X', newKey.privateKey, '22'),
    leaf: certificate('EK', forgeKey(leafKey), 'X', oldKey.privateKey, '23', false),
  };
}

function caCertificate(subject: string, publicKey: forge.pki.PublicKey, issuer: string, signer: KeyObject, serial: string): Uint8Array {
  return certificate(subject, publicKey, issuer, signer, serial, true);
}

function certificate(subject: string, publicKey: forge.pki.PublicKey, issuer: string, signer: KeyObject, serial: string, ca: boolean): Uint8Array {
  const cert = forge.pki.createCertificate();
  cert.serialNumber = serial;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.publicKey = publicKey;
  cert.setSubject([{ name: 'commonName', value: subject }]);
  cert.setIssuer([{ name: 'commonName', value: issuer }]);
  cert.setExtensions(ca ? [{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true }] : [{ name: 'basicConstraints', cA: false }]);
  cert.sign(forge.pki.privateKeyFromPem(signer.export({ type: 'pkcs1', format: 'pem' }).toString()), forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

function forgeKey(key: KeyObject): forge.pki.PublicKey {
  return forge.pki.publicKeyFromPem(key.export({ type: 'spki', format: 'pem' }).toString());
}

/** DER INTEGER of a non-negative value (a leading zero byte keeps it positive, X.690 §8.3). */
function integerDer(value: bigint): string {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  const length = body.length < 0x80 ? Buffer.from([body.length]) : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([0x02]), length, body]).toString('binary');
}
