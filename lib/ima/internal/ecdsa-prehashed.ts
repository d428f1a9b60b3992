import type { KeyObject } from 'node:crypto';

/**
 * ECDSA verification over a digest the caller already has (SEC 1 v2 §4.1.4, FIPS 186-5 §6.4.2).
 *
 * IMA signs the file digest itself (`signature_v2_hdr` over the `d-ng` digest), and node:crypto
 * cannot verify a prehashed ECDSA signature: `crypto.verify` always hashes its input. So the curve
 * arithmetic is done here, with BigInt, in Jacobian coordinates (Shamir's trick for u1·G + u2·Q).
 * Only public data is involved, so the arithmetic needs no constant-time care.
 *
 * Curve parameters: SEC 2 v2 §2.4.1 (secp256k1), §2.4.2 (secp256r1 = P-256), §2.5.1 (secp384r1),
 * §2.6.1 (secp521r1).
 */

interface Curve {
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly n: bigint;
}

const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P384_P =
  0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn;
const P521_P = (1n << 521n) - 1n;

const CURVES: Readonly<Record<string, Curve>> = {
  'P-256': {
    p: P256_P,
    a: P256_P - 3n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  secp256k1: {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn,
    a: 0n,
    b: 7n,
    gx: 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
    gy: 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
    n: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  },
  'P-384': {
    p: P384_P,
    a: P384_P - 3n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
  'P-521': {
    p: P521_P,
    a: P521_P - 3n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
    gx: 0x00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66n,
    gy: 0x011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650n,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  },
};

/** The JWK curve names we can verify with. */
export function isSupportedCurve(name: string): boolean {
  return Object.hasOwn(CURVES, name);
}

type Jacobian = readonly [bigint, bigint, bigint];
const INFINITY: Jacobian = [0n, 1n, 0n];

function mod(x: bigint, m: bigint): bigint {
  const r = x % m;
  return r < 0n ? r + m : r;
}

/** Modular inverse by the extended Euclidean algorithm; `x` must be coprime with `m`. */
function invert(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [mod(x, m), m, 1n, 0n];
  while (a !== 0n) {
    const q = b / a;
    [a, b] = [b - q * a, a];
    [u, v] = [v - q * u, u];
  }
  return mod(v, m);
}

function double(c: Curve, [x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) {
    return INFINITY;
  }
  const { p } = c;
  const yy = (y * y) % p;
  const s = (4n * x * yy) % p;
  const zz = (z * z) % p;
  const m = mod(3n * x * x + c.a * zz * zz, p);
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * yy * yy, p);
  const z3 = (2n * y * z) % p;
  return [x3, y3, z3];
}

function add(c: Curve, a: Jacobian, b: Jacobian): Jacobian {
  if (a[2] === 0n) {
    return b;
  }
  if (b[2] === 0n) {
    return a;
  }
  const { p } = c;
  const z1z1 = (a[2] * a[2]) % p;
  const z2z2 = (b[2] * b[2]) % p;
  const u1 = (a[0] * z2z2) % p;
  const u2 = (b[0] * z1z1) % p;
  const s1 = (a[1] * b[2] * z2z2) % p;
  const s2 = (b[1] * a[2] * z1z1) % p;
  if (u1 === u2) {
    return s1 === s2 ? double(c, a) : INFINITY;
  }
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = (h * h) % p;
  const hhh = (hh * h) % p;
  const v = (u1 * hh) % p;
  const x3 = mod(r * r - hhh - 2n * v, p);
  const y3 = mod(r * (v - x3) - s1 * hhh, p);
  const z3 = (a[2] * b[2] * h) % p;
  return [x3, y3, z3];
}

/** u1·G + u2·Q in one pass over the bits (Shamir's trick). */
function twinMultiply(c: Curve, u1: bigint, u2: bigint, q: Jacobian): Jacobian {
  const g: Jacobian = [c.gx, c.gy, 1n];
  const gq = add(c, g, q);
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  let acc = INFINITY;
  for (let i = bits - 1; i >= 0; i--) {
    acc = double(c, acc);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 === 1n && b2 === 1n) {
      acc = add(c, acc, gq);
    } else if (b1 === 1n) {
      acc = add(c, acc, g);
    } else if (b2 === 1n) {
      acc = add(c, acc, q);
    }
  }
  return acc;
}

function fromBase64Url(value: string | undefined): bigint {
  return BigInt(`0x${Buffer.from(value ?? '', 'base64url').toString('hex') || '0'}`);
}

/**
 * Verifies an ECDSA signature `(r, s)` over `digest` with the EC public key `key`. Returns false for
 * any invalid input (unknown curve, point not on the curve, r or s out of range) rather than throwing.
 */
export function verifyEcdsaPrehashed(key: KeyObject, digest: Uint8Array, r: bigint, s: bigint): boolean {
  const jwk = key.export({ format: 'jwk' });
  const curve = CURVES[jwk.crv ?? ''];
  if (curve === undefined || jwk.x === undefined || jwk.y === undefined) {
    return false;
  }
  const { p, n } = curve;
  const qx = fromBase64Url(jwk.x);
  const qy = fromBase64Url(jwk.y);
  if (mod(qy * qy - (qx * qx * qx + curve.a * qx + curve.b), p) !== 0n) {
    return false;
  }
  if (r < 1n || r >= n || s < 1n || s >= n) {
    return false;
  }
  const nBits = n.toString(2).length;
  let e = digest.length === 0 ? 0n : BigInt(`0x${Buffer.from(digest).toString('hex')}`);
  if (digest.length * 8 > nBits) {
    e >>= BigInt(digest.length * 8 - nBits);
  }
  const w = invert(s, n);
  const point = twinMultiply(curve, mod(e * w, n), mod(r * w, n), [qx, qy, 1n]);
  if (point[2] === 0n) {
    return false;
  }
  const zInverse = invert(point[2], p);
  const x = (point[0] * zInverse * zInverse) % p;
  return x % n === r;
}
