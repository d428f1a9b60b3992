import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { readRegularFileSync } from '../../files/regular-file.js';
import { PRIVATE_KEY_MODE, replaceFileSync } from '../../pki/pem-files.js';

/** A `failed` liveness verdict the database did not take (yet). */
export interface UnstoredFailure {
  readonly agentId: string;
  /** The enrolment it was seen for: stored only while the row still holds it. */
  readonly enrolment: string;
  readonly reason: string;
}

/**
 * The list one process keeps, beside `file` (`<name>.json` gives `<name>.<tag>.json`): every process on
 * a data folder keeps its own, since each writes its list whole from its own memory and would
 * otherwise overwrite (or remove) another's.
 */
export function ownListBeside(file: string): string {
  return path.join(path.dirname(file), `${path.basename(file, '.json')}.${randomBytes(6).toString('hex')}.json`);
}

/** The lists kept beside `file`: `file` itself (one list for the whole folder, before) and every process's own. */
function listsBeside(file: string): string[] {
  const stem = path.basename(file, '.json');
  const folder = path.dirname(file);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const ofStem = (name: string): boolean => name.startsWith(`${stem}.`) && /^\.([0-9a-f]+\.)?json$/.test(name.slice(stem.length));
  return names.filter(ofStem).map((name) => path.join(folder, name));
}

/**
 * Takes over every list kept beside `file` (by earlier runs, or by processes sharing the folder that
 * may still run): each is first renamed to a new name of the same kind, then read, so that a running
 * process that writes its list again makes a new file rather than one this start already read and then
 * removes. Returns the failures and the lists taken, to be removed once `ownList` holds them.
 *
 * @throws Error for a list that is no list of failures: its content is not guessed at, and a verifier
 *   that starts without it could bring back a node a lost verdict failed.
 */
export function claimUnstoredFailures(file: string, ownList: string): { failures: UnstoredFailure[]; claimed: string[] } {
  const failures: UnstoredFailure[] = [];
  const claimed: string[] = [];
  for (const list of listsBeside(file)) {
    if (list === ownList) continue;
    const taken = ownListBeside(file);
    try {
      renameSync(list, taken);
    } catch (error) {
      // Taken meanwhile by another process starting, or removed by its writer once stored.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      // A folder this process may not change (read-only): the list is read where it is and left there.
      failures.push(...readUnstoredFailures(list));
      continue;
    }
    claimed.push(taken);
    failures.push(...readUnstoredFailures(taken));
  }
  return { failures, claimed };
}

/** Longest list read: a failure is a few hundred bytes, so this keeps those of a fleet of 100,000 nodes and more. */
const MAX_LIST_BYTES = 64 * 1024 * 1024;

/** @throws FileReadError for a FIFO (which held the start for ever), a folder or a longer file; Error for one that is no list */
function readUnstoredFailures(file: string): UnstoredFailure[] {
  const text = readRegularFileSync(file, { setting: 'the unstored liveness failures', maxBytes: MAX_LIST_BYTES }).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
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
