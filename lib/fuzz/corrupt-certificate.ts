/** OIDs of the SubjectPublicKeyInfo algorithm: rsaEncryption and id-ecPublicKey (RFC 8017, RFC 5480). */
const KEY_ALGORITHM_OIDS = ['06092a864886f70d010101', '06072a8648ce3d0201'];

/**
 * `der` with the last byte of its public-key algorithm OID flipped: OpenSSL still parses the
 * certificate, and fails only when its public key is asked for (issue 11 item 5).
 */
export function withCorruptKeyAlgorithm(der: Uint8Array): Buffer {
  const hex = Buffer.from(der).toString('hex');
  for (const oid of KEY_ALGORITHM_OIDS) {
    const at = hex.indexOf(oid);
    if (at >= 0 && at % 2 === 0) {
      const bad = Buffer.from(der);
      const last = at / 2 + oid.length / 2 - 1;
      bad[last] = (bad[last] ?? 0) ^ 0x55;
      return bad;
    }
  }
  throw new Error('no public-key algorithm OID found');
}

/** Issue 11 item 5: each certificate with corrupt public-key algorithm bytes (those that have the OID). */
export function corrupted(certs: readonly Uint8Array[]): Uint8Array[] {
  return certs.flatMap((der) => {
    try {
      return [withCorruptKeyAlgorithm(der)];
    } catch {
      return [];
    }
  });
}
