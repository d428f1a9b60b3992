import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** A `failed` liveness verdict the database did not take before the verifier closed. */
export interface UnstoredFailure {
  readonly agentId: string;
  /** The enrolment it was seen for: stored only while the row still holds it. */
  readonly enrolment: string;
  readonly reason: string;
}

/**
 * The failures a closing verifier kept in `file` (its data folder), none when there is no file.
 *
 * @throws Error for a file that is no list of failures: its content is not guessed at, and a verifier
 *   that starts without it could bring back a node a lost verdict failed.
 */
export function readUnstoredFailures(file: string): UnstoredFailure[] {
  if (!existsSync(file)) return [];
  const value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(value) || !value.every(isUnstoredFailure)) {
    throw new Error(`${file} is not a list of unstored liveness failures ({agentId, enrolment, reason}): remove it only after failing those nodes by hand`);
  }
  return value;
}

/** Replaces `file` with `failures` (written whole, then renamed: never half a list), or removes it when there are none. */
export function writeUnstoredFailures(file: string, failures: readonly UnstoredFailure[]): void {
  if (failures.length === 0) {
    rmSync(file, { force: true });
    return;
  }
  const partial = `${file}.partial`;
  writeFileSync(partial, JSON.stringify(failures), { mode: 0o600 });
  renameSync(partial, file);
}

function isUnstoredFailure(value: unknown): value is UnstoredFailure {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return typeof entry['agentId'] === 'string' && typeof entry['enrolment'] === 'string' && typeof entry['reason'] === 'string';
}
