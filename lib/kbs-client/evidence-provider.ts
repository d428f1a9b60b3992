/**
 * Where a KBS client gets evidence from (guest-components `EvidenceProvider`): the TEE it reports in
 * Request, and evidence whose report data is `reportData` (H(JCS(runtime-data)), 32 bytes).
 */
export interface EvidenceProvider {
  readonly tee: string;
  primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>>;
}
