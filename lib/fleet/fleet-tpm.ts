import { createSoftwareTpm, type SoftwareTpm } from '../tpm-access/software/tpm-adapter.js';
import type { EkAlgorithm } from '../tpm-access/tpm-port.js';
import type { FleetMaterial } from './fleet-material.js';

/** The key families of a simulated node's TPM: its EK's and its AKs'. */
export interface FleetTpmKeys {
  readonly ek: EkAlgorithm;
  readonly ak: EkAlgorithm;
}

/** A simulated node's in-process TPM; an RSA EK gets a certificate from the fleet's EK CA. */
export function createFleetTpm(material: FleetMaterial, keys: FleetTpmKeys): Promise<SoftwareTpm> {
  const ekCa = material.ekCa;
  return createSoftwareTpm({
    ekAlgorithm: keys.ek,
    akAlgorithm: keys.ak,
    // node-forge (behind the software EK CA) has no EC keys: ECC software EKs come without a certificate.
    ...(keys.ek === 'rsa' ? { issueEkCertificate: (key) => ekCa.issue(key) } : {}),
  });
}
