/**
 * Readers for the few pieces of tpm2-tools text output the adapter needs. tpm2-tools prints YAML; we
 * take only lines of a fixed, documented shape and ignore everything else.
 */

/** Handles listed by `tpm2_getcap handles-persistent` / `handles-nv-index` (`- 0x81010001` lines). */
export function parseHandleList(stdout: string): Set<number> {
  const handles = new Set<number>();
  for (const match of stdout.matchAll(/^\s*-\s*0x([0-9a-fA-F]{1,8})\s*$/gm)) {
    handles.add(Number.parseInt(match[1] ?? '', 16));
  }
  return handles;
}

/**
 * PCR values from `tpm2_pcrread <bank>:<list>` for a single bank:
 * ```
 *   sha256:
 *     0 : 0x3D45…
 * ```
 */
export function parsePcrReadOutput(stdout: string): Map<number, Uint8Array> {
  const values = new Map<number, Uint8Array>();
  for (const match of stdout.matchAll(/^\s*(\d+)\s*:\s*0x([0-9a-fA-F]+)\s*$/gm)) {
    values.set(Number(match[1]), new Uint8Array(Buffer.from(match[2] ?? '', 'hex')));
  }
  return values;
}

/** TPM handle as tpm2-tools takes it on the command line. */
export function handleArg(handle: number): string {
  return `0x${handle.toString(16).padStart(8, '0')}`;
}
