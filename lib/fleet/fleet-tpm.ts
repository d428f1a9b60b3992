import { createSoftwareTpm, type SoftwareTpm } from '../tpm-access/software/tpm-adapter.js';
import type { EkAlgorithm } from '../tpm-access/tpm-port.js';
import type { FleetMaterial } from './fleet-material.js';

/** A simulated node's in-process TPM; an RSA EK gets a certificate from the fleet's EK CA. */
export function createFleetTpm(material: FleetMaterial, ekAlgorithm: EkAlgorithm): Promise<SoftwareTpm> {
  const ekCa = material.ekCa;
  return createSoftwareTpm({
    ekAlgorithm,
    // node-forge (behind the software EK CA) has no EC keys: ECC software EKs come without a certificate.
    ...(ekAlgorithm === 'rsa' ? { issueEkCertificate: (key) => ekCa.issue(key) } : {}),
  });
}
