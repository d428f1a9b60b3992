import { existsSync, readFileSync, rmSync } from 'node:fs';
import { PRIVATE_KEY_MODE, replaceFileSync } from '../../pki/pem-files.js';

/** A `failed` liveness verdict the database did not take (yet). */
export interface UnstoredFailure {
  readonly agentId: string;
  /** The enrolment it was seen for: stored only while the row still holds it. */
  readonly enrolment: string;
  readonly reason: string;
}

/**
 * The failures a verifier kept in `file` (its data folder), none when there is no file.
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

/**
 * Replaces `file` with `failures` (whole, owner-only, flushed to disk before it returns: a process killed
 * right after still leaves them), or removes it when there are none.
 * @throws Error when it cannot be written or removed
 */
export function writeUnstoredFailures(file: string, failures: readonly UnstoredFailure[]): void {
  if (failures.length === 0) {
    rmSync(file, { force: true });
    return;
  }
  replaceFileSync(file, JSON.stringify(failures), PRIVATE_KEY_MODE);
}

function isUnstoredFailure(value: unknown): value is UnstoredFailure {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return typeof entry['agentId'] === 'string' && typeof entry['enrolment'] === 'string' && typeof entry['reason'] === 'string';
}
