import { TPM_ALG_ECC, TPM_ALG_RSA } from '../../tpm/constants.js';
import { parseTpm2bPublic } from '../../tpm/tpmt-public.js';
import type { AkInfo } from '../../tpm-access/tpm-port.js';

/**
 * Bits of each TPM_ECC_CURVE (TCG Algorithm Registry): NIST P-192 to P-521, BN P-256 and P-638,
 * SM2 P-256.
 */
const ECC_CURVE_BITS: ReadonlyMap<number, number> = new Map([
  [0x0001, 192],
  [0x0002, 224],
  [0x0003, 256],
  [0x0004, 384],
  [0x0005, 521],
  [0x0010, 256],
  [0x0011, 638],
  [0x0020, 256],
]);

/**
 * The AK as phase 1's `certification_keys` item describes it (keylime-protocol §10.3), with what the
 * Rust push agent puts there: the key's real size (an RSA key's `keyBits`, an ECC key's curve size;
 * omitted for a curve not in the registry) and `local_identifier`, the hex of the AK's TPM name
 * (nameAlg ‖ H(TPMT_PUBLIC)), which names the key on the agent's side.
 */
export function certificationKey(ak: AkInfo): Record<string, unknown> {
  const area = parseTpm2bPublic(ak.akPublic);
  const bits = area.type === TPM_ALG_RSA ? area.parameters.keyBits : area.type === TPM_ALG_ECC ? ECC_CURVE_BITS.get(area.parameters.curveId) : undefined;
  return {
    key_class: 'asymmetric',
    key_algorithm: area.type === TPM_ALG_RSA ? 'rsa' : 'ecc',
    ...(bits === undefined ? {} : { key_size: bits }),
    server_identifier: 'ak',
    local_identifier: Buffer.from(ak.akName).toString('hex'),
    allowable_signature_schemes: [ak.signAlg],
    allowable_hash_algorithms: [ak.hashAlg],
    public: Buffer.from(ak.akPublic).toString('base64'),
  };
}
