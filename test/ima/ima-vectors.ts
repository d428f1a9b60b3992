import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';

/** Text of a vector under shared/vectors (see its INDEX.md). */
export function vectorText(...parts: string[]): string {
  return readFileSync(vectorPath(...parts), 'utf8');
}

/** Bytes of a vector under shared/vectors. */
export function vectorBytes(...parts: string[]): Buffer {
  return readFileSync(vectorPath(...parts));
}

/** keylime/ima/verification/<name> as text. */
export function verificationVector(name: string): string {
  return vectorText('keylime', 'ima', 'verification', name);
}

/** The 826-entry ima-ng list of rust-keylime's agent tests. */
export function rustKeylimeLog(): string {
  return vectorText('rust-keylime', 'ima', 'ascii_runtime_measurements');
}

/** PCR 10 (sha1) of that list replayed from zero (vectors INDEX, computed independently). */
export const RUST_KEYLIME_PCR10_SHA1 = '82231c67a69da98dc5b3aa10f6343d33109225fc';
