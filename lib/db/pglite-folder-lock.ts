import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DatabaseUnavailable } from '../../interfaces/errors.js';

/**
 * The file beside a PGlite folder (`<folder>.lock`) that names the process that has it open: beside,
 * not inside, because PGlite's first start (initdb) wants an empty folder.
 */
export function pgliteLockFile(folder: string): string {
  return `${folder}.lock`;
}

/** The process warning's code when an opener takes over the lock file of a process that is gone. */
export const PGLITE_LOCK_TAKEN_OVER_WARNING = 'IRONLIME_PGLITE_LOCK_TAKEN_OVER';

/** What the lock file holds. */
interface LockHolder {
  readonly pid: number;
  /** The kernel's start time of that process (`/proc/<pid>/stat`), telling it from a later one with the same pid; null where unknown. */
  readonly processStart: string | null;
  readonly hostname: string;
  readonly openedAt: string;
}

/** Lock files this process holds: released on close and, for any left, when the process exits. */
const held = new Set<string>();
let releaseOnExit = false;

/**
 * Takes the folder of an embedded PGlite for this process. PGlite is PostgreSQL run inside the
 * process, with no server to arbitrate: two processes (a service and `ironlime db migrate` or
 * `audit export` beside it) on one folder lose each other's committed writes or crash. The lock file
 * is created exclusively with the holder's pid, process start time and host name; one left on this
 * host by a process that is gone (killed, or a later process now has its pid, as pid 1 in a restarted
 * container) is taken over with a process warning. One written on another host name is refused: pids
 * of another machine or pid namespace (a second container on the volume, pid 1 as well) say nothing
 * here.
 *
 * @returns the release: removes the lock file (call it once the database is closed).
 * @throws DatabaseUnavailable when another process (or an earlier open in this one) has the folder.
 */
export function lockPgliteFolder(folder: string): () => void {
  const file = pgliteLockFile(folder);
  if (held.has(file)) {
    throw new DatabaseUnavailable(`PGlite in ${folder} is already open in this process (pid ${process.pid}): close it before opening it again`);
  }
  const mine: LockHolder = { pid: process.pid, processStart: processStart(process.pid), hostname: hostname(), openedAt: new Date().toISOString() };
  if (!create(file, mine)) takeOver(folder, file, mine);
  held.add(file);
  if (!releaseOnExit) {
    releaseOnExit = true;
    process.once('exit', () => {
      for (const left of held) rmSync(left, { force: true });
    });
  }
  return () => {
    if (held.delete(file)) rmSync(file, { force: true });
  };
}

/**
 * Creates `file` holding `holder`, complete or not at all (a hard link fails when the name exists);
 * false when it exists. A folder it cannot write in (read-only) is a coded error like any other.
 */
function create(file: string, holder: LockHolder): boolean {
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(draft, JSON.stringify(holder));
  } catch (error) {
    throw new DatabaseUnavailable(`cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DatabaseUnavailable(`cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    rmSync(draft, { force: true });
  }
}

/** Replaces the lock file of a process that is gone; anything else is refused. */
function takeOver(folder: string, file: string, mine: LockHolder): void {
  const text = readText(file);
  const holder = parse(text);
  if (holder === undefined) {
    throw new DatabaseUnavailable(`PGlite in ${folder}: its lock file ${file} is unreadable; if no process uses the folder, delete the file`);
  }
  if (holder.hostname !== hostname()) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder} is open on another host: pid ${holder.pid} on ${holder.hostname}, since ${holder.openedAt} (lock file ${file}). ` +
        'Its pid tells nothing here (another machine, or another container on the same volume), so this start cannot tell whether it still runs: ' +
        'stop it first, or, if it is gone, delete the lock file; PostgreSQL (databaseUrl) serves several processes',
    );
  }
  if (alive(holder)) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder} is open in another process: pid ${holder.pid} on ${holder.hostname}, since ${holder.openedAt} (lock file ${file}). ` +
        'PGlite admits one process per folder: stop that process first, or use PostgreSQL (databaseUrl) for several processes',
    );
  }
  // Moved aside, then checked: another opener may have taken it over between the read and the move.
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    throw new DatabaseUnavailable(`PGlite in ${folder}: another process is taking over its lock file ${file} at the same time`, { cause: error });
  }
  const moved = readText(aside);
  if (moved !== text) {
    try {
      linkSync(aside, file);
    } catch {
      // Its taker's file is back already, or a newer one stands there.
    }
    rmSync(aside, { force: true });
    throw new DatabaseUnavailable(`PGlite in ${folder}: another process took over its lock file ${file} at the same time`);
  }
  rmSync(aside, { force: true });
  if (!create(file, mine)) throw new DatabaseUnavailable(`PGlite in ${folder}: another process created its lock file ${file} at the same time`);
  process.emitWarning(`took over the lock file of PGlite in ${folder}: its holder, pid ${holder.pid} since ${holder.openedAt}, is gone`, {
    code: PGLITE_LOCK_TAKEN_OVER_WARNING,
  });
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new DatabaseUnavailable(`cannot read the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function parse(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || !Number.isSafeInteger(value.pid) || value.pid <= 0) return undefined;
    return {
      pid: value.pid,
      processStart: typeof value.processStart === 'string' ? value.processStart : null,
      hostname: typeof value.hostname === 'string' ? value.hostname : 'unknown host',
      openedAt: typeof value.openedAt === 'string' ? value.openedAt : 'unknown',
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that wrote the lock file on this host may still run. Its pid in this process
 * is an earlier process's (opens in this process are in `held`); a pid with no process, or whose
 * process started at another time, is gone. Unknown start times count as alive.
 */
function alive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the process exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = processStart(holder.pid);
  return holder.processStart === null || start === null || start === holder.processStart;
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), after the parenthesised command name; null off Linux. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
