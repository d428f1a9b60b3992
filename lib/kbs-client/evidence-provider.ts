/**
 * Where a KBS client gets evidence from (guest-components `EvidenceProvider`): the TEE it reports in
 * Request, and evidence whose report data is `reportData` (`reportDataOf`: the runtime-data binding
 * hashed with the Challenge's selected hash; for `tpm` fitted to 32 bytes).
 */
export interface EvidenceProvider {
  readonly tee: string;
  primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>>;
}
