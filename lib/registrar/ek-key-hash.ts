import { createHash } from 'node:crypto';
import { DamagedAgentRecord } from './registrar-errors.js';
import { parseTpm2bPublic, type TpmtPublicFields } from '../tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic } from '../tpm/tpmt-public-key.js';

/**
 * What the per-EK limit counts: hex sha256 of the EK's public key as SubjectPublicKeyInfo DER. Not the
 * TPM2B_PUBLIC bytes: its auth policy, attributes and parameters can be varied around one key, and each
 * variant would otherwise count as another EK. @throws TpmKeyError when the area holds no usable key.
 */
export function ekKeyHash(ekPublic: TpmtPublicFields): string {
  const spki = publicKeyFromTpmtPublic(ekPublic).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/** `ekKeyHash` of a stored base64 TPM2B_PUBLIC (`registrar_agents.ek_tpm`). @throws on bytes that do not parse */
export function ekKeyHashOfStored(ekTpm: string): string {
  return ekKeyHash(parseTpm2bPublic(Buffer.from(ekTpm, 'base64')));
}

/**
 * The `ek_key_hash` an update of a stored record writes back. Rows stored before the database required
 * it (migration 20261204150000 is NOT VALID) may hold an EK without one, and the database refuses any
 * update of such a row that leaves it so: the hash is computed from the stored EK when that parses.
 * @throws DamagedAgentRecord when it does not: the record cannot be changed, only deleted.
 */
export function ekKeyHashToKeep(agentId: string, ekTpm: string | null, storedHash: string | null): string | null {
  if (ekTpm === null || storedHash !== null) return storedHash;
  try {
    return ekKeyHashOfStored(ekTpm);
  } catch (error) {
    throw new DamagedAgentRecord(agentId, 'its stored EK does not parse', { cause: error });
  }
}
